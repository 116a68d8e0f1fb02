"""One writer per warehouse: a lock that names the run holding it.

Two runbooks writing the same tables at once would interleave their date-range
replacements and their run history. The runbook driver takes this lock before it creates a
run archive and keeps it until the run ends, so a second run is refused at once with a
message naming the first one.

The lock is a small JSON file created with ``O_CREAT | O_EXCL`` (atomic on a local disk):
  * DuckDB: next to the database file (``<file>.duckdb.runbook-lock``);
  * BigQuery: in the archive folder, keyed by project and dataset suffix
    (``<archive_dir>/.locks/bigquery-<project><suffix>.lock``) — it protects against runs
    started from the same machine or shared archive folder, not from another host. So on
    BigQuery the lock is also the warehouse's **lease row** (``nbcore.warehouse.lease``:
    ``nba_reference.runbook_lease``), taken after the file: a runner on another machine is
    refused with the holder's name, an expired lease (a dead holder) is taken over and the
    session its holder left open is aborted before anything is written. While it holds the
    lease, the lock sets ``RUNBOOK_LEASE_RUN_ID`` for the stage kernels the driver starts (their
    transactions heartbeat it and record their session) and extends it from a background
    thread every third of its TTL (stages that write nothing for a while keep it).

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
import threading
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from .errors import WarehouseLockedError
from .lockfile import (LockInfo, _pid_alive, _proc_start, duckdb_lock_file, flock_holder,  # noqa: F401 - re-exported
                       flock_identity, read_lock)
from .params import RunParams

log = logging.getLogger(__name__)


class RunLockedError(WarehouseLockedError, RuntimeError):
    """Another run holds the warehouse lock."""

    def __init__(self, message: str, holder: "LockInfo | None" = None):
        super().__init__(message)
        self.holder = holder


def _lease_info(lease, warehouse: str) -> LockInfo:
    """A lease row (``nbcore.warehouse.lease.LeaseInfo``) as a ``LockInfo``."""
    iso = lambda t: t.isoformat(timespec="seconds")  # noqa: E731
    return LockInfo(run_id=lease.run_id, pid=0, host=lease.host, started_at=iso(lease.acquired_at),
                    warehouse=warehouse, holder=lease.holder, expires_at=iso(lease.expires_at))


def _open_bigquery(params: RunParams, run_id: str):
    from .warehouse.bigquery import BigQueryWarehouse

    wh = BigQueryWarehouse.from_params(params, run_id=run_id, stage="lock")
    wh.ensure_schema()  # the lease table lives in nba_reference, which a first run has not created yet
    return wh


def lock_path(params: RunParams) -> Path:
    """Where the lock file for this warehouse lives."""
    if params.backend == "duckdb":
        return duckdb_lock_file(params.duckdb_path)  # keyed by the real path: a symlink meets the same file
    bq = params.bigquery
    key = f"{bq.project}{bq.dataset_suffix}".replace("/", "_")
    return Path(params.archive_dir) / ".locks" / f"bigquery-{key}.lock"


def warehouse_label(params: RunParams) -> str:
    if params.backend == "duckdb":
        return f"duckdb:{params.duckdb_path}"
    return f"bigquery:{params.bigquery.project}{params.bigquery.dataset_suffix}"


class WarehouseLock:
    """``with WarehouseLock(params, run_id):`` — refused with ``RunLockedError`` when held."""

    def __init__(self, params: RunParams, run_id: str, *, take_over_stale: bool = True,
                 host: Optional[str] = None, lease_ttl=None, heartbeat: bool = True):
        self.params = params
        self.path = lock_path(params)
        self.warehouse = warehouse_label(params)
        self.run_id = run_id
        self.take_over_stale = take_over_stale
        self.released_stale: Optional[LockInfo] = None
        self.host = host or socket.gethostname()  # ``host``: a simulated machine, in tests
        self.lease_ttl = lease_ttl
        self.heartbeat = heartbeat
        self.lease = None  # BigQuery: the warehouse lease held (nbcore.warehouse.lease.Lease)
        self._stop: Optional[threading.Event] = None
        self._env_before: Optional[str] = None
        self._held = False
        self._identity_fd: Optional[int] = None  # DuckDB: the flock on the warehouse file's inode

    # -- inspection --------------------------------------------------------------
    def holder(self) -> Optional[LockInfo]:
        return read_lock(self.path)

    # -- acquire / release -------------------------------------------------------
    def acquire(self) -> "WarehouseLock":
        self._acquire_file()
        if self.params.backend == "bigquery" and self.lease is None:
            try:
                self._acquire_lease()
            except BaseException:
                self._release_file()
                raise
        return self

    def _acquire_lease(self) -> None:
        from .warehouse.bigquery import LEASE_ENV
        from .warehouse.lease import DEFAULT_TTL, Lease, LeaseHeldError

        wh = _open_bigquery(self.params, self.run_id)
        lease = Lease(wh, self.run_id, host=self.host, ttl=self.lease_ttl or DEFAULT_TTL)
        try:
            lease.acquire()
        except LeaseHeldError as e:
            wh.close()
            raise RunLockedError(str(e).replace("the warehouse is locked by", f"warehouse {self.warehouse} is locked by",
                                                1), _lease_info(e.holder, self.warehouse)) from None
        except BaseException:
            wh.close()
            raise
        self.lease = lease
        if lease.taken_over is not None:
            log.warning("took over the expired warehouse lease of %s", lease.taken_over.describe())
            self.released_stale = _lease_info(lease.taken_over, self.warehouse)
        self._env_before = os.environ.get(LEASE_ENV)
        os.environ[LEASE_ENV] = self.run_id  # the stage kernels this driver starts hold it too
        if self.heartbeat and lease.ttl.total_seconds() > 0:
            self._stop = threading.Event()
            threading.Thread(target=self._beat, args=(self._stop, lease.ttl.total_seconds() / 3),
                             name="runbook-lease-heartbeat", daemon=True).start()

    def _beat(self, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            try:
                if not self.lease.extend():
                    log.error("the warehouse lease of run %s was taken by another runner", self.run_id)
                    return
            except Exception as e:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("warehouse lease heartbeat failed: %s", e)

    def _acquire_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = LockInfo(
            run_id=self.run_id, pid=os.getpid(), host=self.host,
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
                    return
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
            self._lock_identity()
            return
        raise RunLockedError(f"could not take the warehouse lock {self.path}; retry")

    def _lock_identity(self) -> None:
        """DuckDB: also lock the warehouse file's inode, so a run reaching the same file by another
        name (a hard link: another folder, another lock file) is refused, naming the holder."""
        if self.params.backend != "duckdb":
            return
        try:
            self._identity_fd = flock_identity(self.params.duckdb_path)
        except BlockingIOError:
            holder = flock_holder(self.params.duckdb_path)
            self._release_file()
            who = holder.describe() if holder else "another process"
            raise RunLockedError(
                f"warehouse {self.warehouse} is locked by {who}, which reaches the same DuckDB file by another "
                f"name ({holder.warehouse.removeprefix('duckdb:') if holder and holder.warehouse else 'a hard link'}); "
                f"wait for it to finish, or stop it first", holder) from None

    def release(self) -> None:
        if self.lease is not None:
            from .warehouse.bigquery import LEASE_ENV

            if self._stop is not None:
                self._stop.set()
            try:
                self.lease.release()
            finally:
                self.lease.wh.close()
                self.lease = None
                if self._env_before is None:
                    os.environ.pop(LEASE_ENV, None)
                else:
                    os.environ[LEASE_ENV] = self._env_before
        self._release_file()

    def _release_file(self) -> None:
        if self._identity_fd is not None:
            os.close(self._identity_fd)  # drops the flock
            self._identity_fd = None
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


def is_stale(holder: LockInfo) -> bool:
    """The holding process is certainly gone (only decidable on the same host)."""
    if holder.host != socket.gethostname():
        return False
    if not _pid_alive(holder.pid):
        return True
    now = _proc_start(holder.pid)
    return bool(holder.proc_start and now and now != holder.proc_start)  # pid reused by another process


def lock_status(params: RunParams) -> tuple[Path, Optional[LockInfo], bool]:
    """(lock file, holder or None, holder is stale). On BigQuery the holder is the lease row's
    (stale: its lease expired), else this machine's lock file's."""
    path = lock_path(params)
    if params.backend == "bigquery":
        lease = _read_lease(params)
        if lease is not None:
            from .warehouse.lease import _utcnow

            return path, _lease_info(lease, warehouse_label(params)), lease.expires_at < _utcnow()
    holder = read_lock(path)
    return path, holder, bool(holder and is_stale(holder))


def _read_lease(params: RunParams):
    from .warehouse.lease import Lease

    wh = _open_bigquery(params, "status")
    try:
        lease = Lease(wh, "status")
        lease.ensure_table()
        return lease.current()
    finally:
        wh.close()


def unlock(params: RunParams, force: bool = False) -> Optional[LockInfo]:
    """Release the lock if its holder is dead (or unconditionally with ``force``). On BigQuery:
    the lease row, if it expired (or with ``force``), its open session aborted; and this
    machine's lock file."""
    if params.backend == "bigquery":
        return _unlock_lease(params, force)
    return _unlock_file(params, force)


def _unlock_lease(params: RunParams, force: bool) -> Optional[LockInfo]:
    from .warehouse.lease import unlock as release_lease

    path, holder, expired = lock_status(params)
    if holder is None or not holder.holder:  # no lease row: only a local lock file, maybe
        return _unlock_file(params, force)
    if not expired and not force:
        raise RunLockedError(
            f"{holder.describe()} holds the warehouse lease of {warehouse_label(params)} and it has not expired "
            f"(it is renewed while the run is alive); pass --force only if you are sure that run is not running",
            holder)
    wh = _open_bigquery(params, "unlock")
    try:
        release_lease(wh)
    finally:
        wh.close()
    local = read_lock(path)
    if local is not None and (local.run_id == holder.run_id or is_stale(local)):
        path.unlink(missing_ok=True)
    return holder


def _unlock_file(params: RunParams, force: bool = False) -> Optional[LockInfo]:
    path = lock_path(params)
    holder = read_lock(path)
    stale = bool(holder and is_stale(holder))
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
