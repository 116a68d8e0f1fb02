"""One error family for the whole runbook, and the exit code each kind of failure maps to.

Every failure the runbook can report derives from ``RunbookError``. The CLI and the driver map
an exception to an exit code with ``exit_code_for`` (one table, here), so a ``ValueError`` raised
by a bug deep in pandas is never mistaken for a usage error.

Exit codes (DESIGN.md): 0 succeeded, 1 a stage failed, 2 usage, 3 the gate blocked,
4 the warehouse is locked by another run.
"""
from __future__ import annotations


class RunbookError(Exception):
    """Root of every error the runbook raises on purpose."""

    exit_code = 1


class UsageError(RunbookError, ValueError):
    """Bad parameters, paths or command-line input, found before any work starts."""

    exit_code = 2


class StageFailed(RunbookError):
    """A stage ran and failed (a chunk, a processor, a query); its record says where."""

    exit_code = 1

    def __init__(self, message: str, *, stage: str = "", record: dict | None = None):
        super().__init__(message)
        self.stage = stage
        self.record = record or {}


class GateBlockedError(RunbookError):
    """The gate refused to let the run go on; the message lists what is missing."""

    exit_code = 3


class WarehouseLockedError(RunbookError):
    """Another run (or an interactive writer) holds the warehouse's single-writer lock."""

    exit_code = 4


EXIT_SUCCEEDED = 0


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an exception: its class's ``exit_code``; 1 for anything else."""
    return int(getattr(exc, "exit_code", 1)) if isinstance(exc, RunbookError) else 1
