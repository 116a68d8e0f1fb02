"""Sharing one DuckDB file between a running backfill and the people looking at it.

DuckDB lets one process write a database file, or any number of processes read it, never
both at once: opening a file another process holds fails at once with "Could not set lock
on file ... Conflicting lock is held in ... (PID n)". A ``runbook status`` polled during a
run, or a notebook left open in JupyterLab, used to make the run fail that way.

The rules here, used by ``DuckDBWarehouse``:

* **Hold the file only while working.** A warehouse object opens its connection for a query
  or a transaction and closes it when it has been idle for ``IDLE_SECONDS`` (a notebook kernel
  that sits idle does not keep the file), and at the start of its next operation when
  another process is waiting and it has held the file for ``MIN_HOLD_SECONDS`` (so a busy
  writer and a busy reader take turns instead of one starving the other).
* **Wait, then say who.** Opening a file that is held waits with bounded, jittered backoff
  (``$RUNBOOK_DUCKDB_WAIT_S``, default 600 s for writers and 120 s for readers), says once that
  it is waiting and for whom, and then fails with ``DuckDBBusyError`` naming the process that
  holds the file and the runbook run that holds the warehouse lock, if any.
* **Announce waiting.** A waiter leaves a marker in ``<file>.waiting/`` (pid and mode); holders
  check for markers of live processes between operations. A reader waiting behind readers is
  not a conflict (DuckDB shares the file between readers), so only a writer's marker makes
  readers yield, and any marker makes a writer yield.
"""
from __future__ import annotations

import logging
import os
import random
import re
import time
from pathlib import Path
from typing import Callable, Optional

import duckdb

from ..errors import UsageError, WarehouseLockedError
from ..lockfile import _pid_alive
from .base import WarehouseError

log = logging.getLogger(__name__)

WAIT_ENV = "RUNBOOK_DUCKDB_WAIT_S"
DEFAULT_WAIT = {"read": 120.0, "write": 600.0}
IDLE_SECONDS = 1.0  # an idle connection is closed after this long
MIN_HOLD_SECONDS = 0.5  # a holder keeps the file at least this long before yielding to a waiter
_LOCK_HELD = re.compile(r"Conflicting lock is held in (?P<prog>.*?) \(PID (?P<pid>\d+)\)")


class DuckDBBusyError(WarehouseError, WarehouseLockedError):
    """The DuckDB file stayed held by another process for the whole wait (exit code 4)."""

    def __init__(self, message: str, holder: str = ""):
        super().__init__(message)
        self.holder = holder


class DuckDBDamagedError(WarehouseError, UsageError):
    """The DuckDB file cannot be read as a database (damaged, cut short, or another kind of file):
    a problem with the file given, not with another process (exit code 2)."""

    def __init__(self, path: str, error: Exception | str):
        super().__init__(
            f"DuckDB file {path} is damaged or not a DuckDB database ({error}); no other process is involved. "
            f"Restore it from a backup, point duckdb_path at the right file, or rebuild the demo warehouse "
            f"with `runbook demo --build-only --params FILE`")
        self.path = path


# what DuckDB says about a file it cannot read as a database (at open, or when a query reaches a bad block)
_DAMAGED = ("Corrupt database file", "not a valid DuckDB database", "Could not read enough bytes",
            "database file is corrupted", "Invalid database file", "Invalid Input Error: The file")


def is_damaged(e: Exception | str) -> bool:
    return any(words in str(e) for words in _DAMAGED)


def damage(path: str) -> Optional[str]:
    """What DuckDB says about a damaged file (cut short, a garbage block), or None when every
    table reads back whole, or when another process holds the file (the lock decides that case).

    Opening a cut-short file succeeds; the damage shows only when a query reaches the missing or
    bad block, by then after a command has made its archive. A writing command therefore reads
    every row once before any work (hashing whole rows makes DuckDB read, and checksum, every
    column block: about 0.1 s for the small demo)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:
        return str(e) if is_damaged(e) else None
    try:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                             "WHERE database_name = current_database()").fetchall()
        for schema_name, table_name in tables:
            quoted = ".".join('"' + x.replace('"', '""') + '"' for x in (schema_name, table_name))
            con.execute(f"SELECT bit_xor(hash(t)) FROM {quoted} AS t").fetchall()
    except duckdb.Error as e:
        return str(e) if is_damaged(e) else None
    finally:
        con.close()
    return None


def _is_lock_conflict(e: Exception) -> bool:
    text = str(e)
    return "Could not set lock" in text or "Conflicting lock" in text


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    words = [w for w in raw.decode(errors="replace").split("\0") if w]
    return " ".join(words)[:160]


def describe_holder(path: str, error: Exception | str) -> str:
    """Who holds ``path``: the process DuckDB names, and the runbook run holding the warehouse lock."""
    parts = []
    m = _LOCK_HELD.search(str(error))
    if m:
        cmd = _cmdline(int(m["pid"]))
        parts.append(f"process {m['pid']} ({cmd or m['prog']})")
    from ..lockfile import duckdb_lock_file, flock_holder, read_lock

    run = read_lock(duckdb_lock_file(path)) or flock_holder(path)
    if run is not None:
        parts.append(f"the warehouse lock is held by {run.describe()}")
    return "; ".join(parts) or "another process"


# -- waiting markers ----------------------------------------------------------------------------
def _marker_dir(path: str) -> Path:
    return Path(str(path) + ".waiting")


class _Marker:
    """``<file>.waiting/<pid>-<id>.<mode>`` while this process waits for the file."""

    def __init__(self, path: str, mode: str):
        self.file: Optional[Path] = None
        try:
            d = _marker_dir(path)
            d.mkdir(exist_ok=True)
            self.file = d / f"{os.getpid()}-{id(self):x}.{mode}"
            self.file.touch()
        except OSError:  # a read-only folder: wait without announcing it
            self.file = None

    def remove(self) -> None:
        if self.file is not None:
            try:
                self.file.unlink()
                self.file.parent.rmdir()  # only succeeds when no one else waits
            except OSError:
                pass
            self.file = None


def waiters(path: str) -> list[tuple[int, str]]:
    """(pid, mode) of live processes other than this one waiting for ``path``."""
    d = _marker_dir(path)
    out = []
    try:
        entries = list(d.iterdir())
    except OSError:
        return out
    for f in entries:
        try:
            pid = int(f.name.split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        if not _pid_alive(pid):
            try:
                f.unlink()  # a waiter that died
            except OSError:
                pass
            continue
        out.append((pid, f.suffix.lstrip(".")))
    return out


def should_yield(path: str, read_only: bool) -> bool:
    """Is a process waiting that this holder blocks? (readers block only writers)."""
    found = waiters(path)
    return any(mode == "write" for _, mode in found) if read_only else bool(found)


def let_waiters_in(path: str, read_only: bool, timeout: float = 5.0) -> None:
    """After closing: give the waiters a moment to take the file before this process reopens it."""
    deadline = time.monotonic() + timeout
    before = {pid for pid, _ in waiters(path)}
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = {pid for pid, _ in waiters(path)}
        if not (now & before):  # every waiter seen has got in (or given up)
            return


# -- opening -----------------------------------------------------------------------------------
def wait_seconds(read_only: bool) -> float:
    env = os.environ.get(WAIT_ENV)
    if env:
        try:
            return max(0.0, float(env))
        except ValueError:
            log.warning("$%s=%r is not a number of seconds; using the default", WAIT_ENV, env)
    return DEFAULT_WAIT["read" if read_only else "write"]


def connect(path: str, read_only: bool, *, wait: Optional[float] = None,
            say: Optional[Callable[[str], None]] = None) -> duckdb.DuckDBPyConnection:
    """Open ``path``, waiting with bounded backoff while another process holds it."""
    say = say or log.warning
    wait = wait_seconds(read_only) if wait is None else wait
    deadline = time.monotonic() + wait
    marker: Optional[_Marker] = None
    announced = False
    delay = 0.05
    t0 = time.monotonic()
    try:
        while True:
            try:
                return duckdb.connect(path, read_only=read_only)
            except duckdb.ConnectionException as e:
                if read_only and "different configuration" in str(e):
                    # this process already writes the file (another warehouse object): read through that instance
                    return duckdb.connect(path, read_only=False)
                raise WarehouseError(f"cannot open DuckDB file {path}: {e}") from e
            except duckdb.IOException as e:
                if is_damaged(e):
                    raise DuckDBDamagedError(path, e) from e
                if not _is_lock_conflict(e):
                    raise WarehouseError(f"cannot open DuckDB file {path}: {e}") from e
                holder = describe_holder(path, e)
                if time.monotonic() >= deadline:
                    raise DuckDBBusyError(
                        f"DuckDB file {path} is held by {holder}; waited {time.monotonic() - t0:.0f} s "
                        f"(${WAIT_ENV}={wait:g}). Wait for it to finish, or close the notebook or process that "
                        f"holds it, then retry.", holder) from e
                if marker is None:
                    marker = _Marker(path, "read" if read_only else "write")
                if not announced:
                    say(f"waiting for DuckDB file {path}: held by {holder}; retrying for up to {wait:g} s")
                    announced = True
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 0.5)
            except duckdb.Error as e:  # "Corrupt database file: computed checksum ..." and the like
                if is_damaged(e):
                    raise DuckDBDamagedError(path, e) from e
                raise WarehouseError(f"cannot open DuckDB file {path}: {e}") from e
    finally:
        if marker is not None:
            marker.remove()
