"""Errors in the shape the BigQuery REST API returns them."""
from __future__ import annotations

_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 501: "UNIMPLEMENTED"}


class BQError(Exception):
    """An API or job error: HTTP code, BigQuery ``reason`` and message."""

    def __init__(self, code: int, reason: str, message: str, location: str | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.location = location

    def error_proto(self) -> dict:
        """The ``ErrorProto`` of ``status.errorResult`` / ``error.errors[]``."""
        e = {"reason": self.reason, "message": self.message}
        if self.location:
            e["location"] = self.location
        return e

    def http_body(self) -> dict:
        err = dict(self.error_proto(), domain="global")
        return {"error": {"code": self.code, "message": self.message, "errors": [err], "status": _STATUS.get(self.code, "UNKNOWN")}}


def not_found(kind: str, name: str, location: str = "US") -> BQError:
    return BQError(404, "notFound", f"Not found: {kind} {name} was not found in location {location}")
