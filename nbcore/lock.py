"""One writer per warehouse: a lock file that names the run holding it.

Two runbooks writing the same tables at once would interleave their date-range
replacements and their run history. The runbook driver takes this lock before it creates a
run archive and keeps it until the run ends, so a second run is refused at once with a
message naming the first one.

The lock is a small JSON file created with ``O_CREAT | O_EXCL`` (atomic on a local disk):
  * DuckDB: next to the database file (``<file>.duckdb.runbook-lock``);
  * BigQuery: in the archive folder, keyed by project and dataset suffix
    (``<archive_dir>/.locks/bigquery-<project><suffix>.lock``) — it protects against runs
    started from the same machine or shared archive folder, not from another host.

It records run id, pid, host and the process start time. A lock whose process is gone
(same host, pid dead or reused) is *stale*: ``acquire`` reports it and, by default,
takes it over (the crash is logged in the new holder's record); a lock held from another
host is never taken over automatically — ``runbook unlock --force`` releases it.
"""
from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from .errors import WarehouseLockedError
from .params import RunParams

log = logging.getLogger(__name__)


class RunLockedError(WarehouseLockedError, RuntimeError):
    """Another run holds the warehouse lock."""

    def __init__(self, message: str, holder: "LockInfo | None" = None):
        super().__init__(message)
        self.holder = holder


@dataclass
class LockInfo:
    run_id: str
    pid: int
    host: str
    started_at: str
    proc_start: Optional[str] = None  # /proc/<pid>/stat start time, guards against pid reuse
    warehouse: str = ""

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}, since {self.started_at})"


def _proc_start(pid: int) -> Optional[str]:
    """The kernel's start time of a process (Linux), or None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after the closing paren are plain
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(params: RunParams) -> Path:
    """Where the lock file for this warehouse lives."""
    if params.backend == "duckdb":
        return Path(str(params.duckdb_path) + ".runbook-lock")
    bq = params.bigquery
    key = f"{bq.project}{bq.dataset_suffix}".replace("/", "_")
    return Path(params.archive_dir) / ".locks" / f"bigquery-{key}.lock"


def warehouse_label(params: RunParams) -> str:
    if params.backend == "duckdb":
        return f"duckdb:{params.duckdb_path}"
    return f"bigquery:{params.bigquery.project}{params.bigquery.dataset_suffix}"


class WarehouseLock:
    """``with WarehouseLock(params, run_id):`` — refused with ``RunLockedError`` when held."""

    def __init__(self, params: RunParams, run_id: str, *, take_over_stale: bool = True):
        self.path = lock_path(params)
        self.warehouse = warehouse_label(params)
        self.run_id = run_id
        self.take_over_stale = take_over_stale
        self.released_stale: Optional[LockInfo] = None
        self._held = False

    # -- inspection --------------------------------------------------------------
    def holder(self) -> Optional[LockInfo]:
        return read_lock(self.path)

    # -- acquire / release -------------------------------------------------------
    def acquire(self) -> "WarehouseLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = LockInfo(
            run_id=self.run_id, pid=os.getpid(), host=socket.gethostname(),
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            proc_start=_proc_start(os.getpid()), warehouse=self.warehouse,
        )
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is None:  # vanished or half-written: try again
                    continue
                if holder.run_id == self.run_id and holder.pid == os.getpid():
                    self._held = True  # re-entrant within one process
                    return self
                if is_stale(holder) and self.take_over_stale:
                    log.warning("releasing a stale warehouse lock: %s is no longer running", holder.describe())
                    self.released_stale = holder
                    self.path.unlink(missing_ok=True)
                    continue
                hint = (f"that process is gone; release it with `runbook unlock --force` ({self.path})"
                        if is_stale(holder) else "wait for it to finish, or stop it first")
                raise RunLockedError(
                    f"warehouse {self.warehouse} is locked by {holder.describe()}; {hint}", holder
                )
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(me), f)
            self._held = True
            return self
        raise RunLockedError(f"could not take the warehouse lock {self.path}; retry")

    def release(self) -> None:
        if not self._held:
            return
        holder = self.holder()
        if holder is not None and holder.run_id == self.run_id and holder.pid == os.getpid():
            self.path.unlink(missing_ok=True)
        self._held = False

    def __enter__(self) -> "WarehouseLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_lock(path: Path) -> Optional[LockInfo]:
    try:
        data = json.loads(Path(path).read_text())
        return LockInfo(**{k: data.get(k) for k in LockInfo.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None


def is_stale(holder: LockInfo) -> bool:
    """The holding process is certainly gone (only decidable on the same host)."""
    if holder.host != socket.gethostname():
        return False
    if not _pid_alive(holder.pid):
        return True
    now = _proc_start(holder.pid)
    return bool(holder.proc_start and now and now != holder.proc_start)  # pid reused by another process


def lock_status(params: RunParams) -> tuple[Path, Optional[LockInfo], bool]:
    """(lock file, holder or None, holder is stale)."""
    path = lock_path(params)
    holder = read_lock(path)
    return path, holder, bool(holder and is_stale(holder))


def unlock(params: RunParams, force: bool = False) -> Optional[LockInfo]:
    """Release the lock if its holder is dead (or unconditionally with ``force``)."""
    path, holder, stale = lock_status(params)
    if holder is None:
        if path.exists():
            path.unlink()
        return None
    if not stale and not force:
        raise RunLockedError(
            f"{holder.describe()} still holds {path}"
            + ("" if holder.host == socket.gethostname() else " (another host: cannot tell if it is alive)")
            + "; pass --force only if you are sure it is not running", holder)
    path.unlink(missing_ok=True)
    return holder
