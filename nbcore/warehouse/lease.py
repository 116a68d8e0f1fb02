"""The single-writer lock of a BigQuery warehouse: a lease row in ``nba_reference``.

A lock file beside the archive stops two runs on one machine; two operators on two
machines writing the same datasets would not see each other's file, and BigQuery would
then queue or abort their conflicting DML. So on BigQuery the lock lives in the warehouse
itself: one row per lock name in ``nba_reference.runbook_lease`` (holder, host, run id,
acquired, heartbeat, expiry, and the session id of the holder's open transaction).

Taking it is one multi-statement transaction (``nbcore/sql/lease/take.sql``): the row is
deleted if it expired or is already ours, and inserted only if no row is left. BigQuery
serializes DML on a table, so of two runners racing, one inserts and the other sees the
row; a concurrent-update abort is retried by the backend, then finds the row too. The
same script then reads the row back: its own run id means the runner holds the lease,
anything else is refused with the holder's name. So taking it costs two jobs (the row
before, for a takeover; the take), and the table is created only when a read finds none. A
heartbeat (one UPDATE, when a stage opens its session) records the session id and pushes
the expiry on, and the holder's heartbeat thread extends it; a holder that stops heartbeating (crash, lost machine) loses the lease at
expiry, and the next runner takes it over, aborting the session the dead holder left open.

Times are the runner's clock (``@now``), so runners' clocks must agree to well within the
TTL (default 15 minutes); NTP does that.
"""
from __future__ import annotations

from ..errors import WarehouseLockedError

import getpass
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

from ..sqlfiles import read_sql
from .base import WarehouseError

TABLE = "nba_reference.runbook_lease"
DEFAULT_TTL = timedelta(minutes=15)
LOCK_NAME = "warehouse"


class LeaseHeldError(WarehouseLockedError, WarehouseError):
    """Another runner holds the warehouse lease."""

    def __init__(self, message: str, holder: "LeaseInfo"):
        super().__init__(message)
        self.holder = holder


@dataclass
class LeaseInfo:
    holder: str
    host: str
    run_id: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    session_id: Optional[str] = None

    def describe(self) -> str:
        return (f"{self.holder} on {self.host} (run {self.run_id}, since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
                f"lease until {self.expires_at:%Y-%m-%d %H:%M:%S} UTC)")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Lease:
    """The lease of one BigQuery warehouse, taken by one runner (holder, host, run id)."""

    def __init__(self, wh, run_id: str, *, holder: Optional[str] = None, host: Optional[str] = None,
                 ttl: timedelta = DEFAULT_TTL, name: str = LOCK_NAME, clock: Callable[[], datetime] = _utcnow):
        self.wh = wh
        self.run_id = run_id
        self.holder = holder or _user()
        self.host = host or socket.gethostname()
        self.ttl = ttl
        self.name = name
        self.clock = clock
        self.held = False
        self.taken_over: Optional[LeaseInfo] = None  # an expired lease this runner took over

    @classmethod
    def attached(cls, wh, run_id: str, **kwargs) -> "Lease":
        """The lease a run's driver took, seen from a stage's own warehouse connection (a
        kernel): not taken again, but heartbeaten at each transaction with its session id."""
        lease = cls(wh, run_id, **kwargs)
        lease.held = True
        return lease

    def _p(self, **extra) -> dict:
        now = self.clock()
        return {"name": self.name, "holder": self.holder, "host": self.host, "run_id": self.run_id, "now": now,
                "expires": now + self.ttl, **extra}

    def ensure_table(self) -> None:
        self.wh.execute_standalone(read_sql("lease/create"), label="lease create")

    def current(self) -> Optional[LeaseInfo]:
        """The lease row, held or expired, or None."""
        return self._info(self.wh.query_standalone(read_sql("lease/read"), {"name": self.name}, label="lease read"))

    @staticmethod
    def _info(df) -> Optional[LeaseInfo]:
        if df.empty:
            return None
        r = df.iloc[0]
        ts = lambda v: v.to_pydatetime().replace(tzinfo=timezone.utc) if v.tzinfo is None else v.to_pydatetime()  # noqa: E731
        sid = r["session_id"]
        return LeaseInfo(holder=r["holder"], host=r["host"], run_id=r["run_id"], acquired_at=ts(r["acquired_at"]),
                         heartbeat_at=ts(r["heartbeat_at"]), expires_at=ts(r["expires_at"]),
                         session_id=None if sid is None or sid != sid else str(sid))

    def acquire(self) -> "Lease":
        """Take the lease, or raise ``LeaseHeldError`` naming the holder. An expired lease (or
        this run's own, on a resume) is taken over, and the session its holder left open with
        a transaction in it is aborted before anything is written."""
        try:
            before = self.current()
        except WarehouseError as e:  # a warehouse no runner has locked yet: the table comes first
            if "not found" not in str(e).lower():
                raise
            self.ensure_table()
            before = self.current()
        now = self._info(self.wh.query_standalone(read_sql("lease/take"), self._p(), label="lease take"))
        if now is None or now.run_id != self.run_id or now.host != self.host or now.holder != self.holder:
            held = now or before
            raise LeaseHeldError(
                f"the warehouse is locked by {held.describe()}. Wait for that run to finish; if it is dead, its "
                f"lease expires at {held.expires_at:%H:%M:%S} UTC, or run `runbook unlock --force` once you are "
                f"sure it is not running.", held)
        self.held = True
        if before is not None and (before.run_id, before.host, before.holder) != (self.run_id, self.host, self.holder):
            self.taken_over = before
        if before is not None and before.session_id:
            self.wh.abort_session(before.session_id)
        return self

    def heartbeat(self, session_id: Optional[str] = None) -> None:
        """Push the expiry on, and record the session id of the transaction now open (None: none)."""
        n = self.wh.execute_standalone(read_sql("lease/heartbeat"), self._p(session_id=session_id or ""),
                                       label="lease heartbeat")
        if n != 1:
            self.held = False
            other = self.current()
            raise LeaseHeldError(
                f"run {self.run_id} lost the warehouse lease (it expired without a heartbeat"
                f"{f' and was taken by {other.describe()}' if other else ''}); stop writing and resume later.",
                other or LeaseInfo(self.holder, self.host, self.run_id, *(self.clock(),) * 3))

    def extend(self) -> bool:
        """Push the expiry on without touching the recorded session (the driver's heartbeat while
        its kernels run); False if the lease is no longer this runner's."""
        n = self.wh.execute_standalone(read_sql("lease/extend"), self._p(), label="lease heartbeat")
        if n != 1:
            self.held = False
        return n == 1

    def release(self) -> None:
        if self.held:
            self.wh.execute_standalone(read_sql("lease/release"), self._p(), label="lease release")
            self.held = False

    def __enter__(self) -> "Lease":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def unlock(wh, name: str = LOCK_NAME) -> Optional[LeaseInfo]:
    """Remove the lease whoever holds it (``runbook unlock --force``); its open session is aborted."""
    lease = Lease(wh, run_id="unlock", name=name)
    lease.ensure_table()
    held = lease.current()
    if held is None:
        return None
    if held.session_id:
        wh.abort_session(held.session_id)
    wh.execute_standalone(read_sql("lease/unlock"), {"name": name}, label="lease unlock")
    return held


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return os.environ.get("USER", "runner")
