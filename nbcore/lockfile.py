"""What a lock file holds and how to read it: the holder's run id, pid, host and start time.

Kept apart from ``nbcore.lock`` (which also takes BigQuery's lease) so the DuckDB connection
code can name the run holding a warehouse without importing the backends it is part of.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass
class LockInfo:
    run_id: str
    pid: int
    host: str
    started_at: str
    proc_start: Optional[str] = None  # /proc/<pid>/stat start time, guards against pid reuse
    warehouse: str = ""
    holder: Optional[str] = None      # BigQuery lease: the user holding it, and until when
    expires_at: Optional[str] = None

    def describe(self) -> str:
        if self.holder:  # a lease row: no pid (another machine's processes are not ours to see)
            return (f"run {self.run_id} ({self.holder} on {self.host}, since {self.started_at}"
                    f"{f', lease until {self.expires_at}' if self.expires_at else ''})")
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


def read_lock(path: Path) -> Optional[LockInfo]:
    try:
        data = json.loads(Path(path).read_text())
        return LockInfo(**{k: data.get(k) for k in LockInfo.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None


# -- one lock per warehouse *file*, whatever path names it ---------------------------------------
def duckdb_lock_file(duckdb_path) -> Path:
    """The lock file of a DuckDB warehouse: next to the file's resolved real path, so every
    symlink to one file (and ``a/../b`` spellings) finds the same lock file."""
    return Path(os.path.realpath(str(duckdb_path)) + ".runbook-lock")


def file_identity(path) -> Optional[tuple[int, int]]:
    """(device, inode) of the file ``path`` names, or None when there is no file (yet)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def flock_identity(path) -> Optional[int]:
    """Take an exclusive ``flock`` on the warehouse file itself; return its descriptor.

    A lock file next to the real path cannot see a *hard link* (another name, another folder,
    the same inode). ``flock`` locks the inode: every name of the file meets it, the kernel drops
    it when the holder dies, and it does not touch DuckDB's own (POSIX ``fcntl``) locks. The
    descriptor is close-on-exec, so the stage kernels a driver starts do not inherit it.
    Returns None when there is no file to lock yet (a warehouse the run will create); raises
    ``BlockingIOError`` when another open file description holds it.
    """
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def flock_holder(path) -> Optional[LockInfo]:
    """Who holds the ``flock`` on ``path``'s inode (Linux: ``/proc/locks``), as the holder's own
    lock file says (found through the name it opened the file by); a bare pid when unreadable."""
    ident = file_identity(path)
    if ident is None:
        return None
    pid = _flock_pid(*ident)
    if pid is None:
        return None
    for name in _open_names(pid, ident):
        info = read_lock(duckdb_lock_file(name))
        if info is not None:
            return info
    return LockInfo(run_id="(unknown run)", pid=pid, host=_hostname(), started_at="?")


def _flock_pid(dev: int, ino: int) -> Optional[int]:
    """The pid of the FLOCK entry of inode (dev, ino) in ``/proc/locks``."""
    want = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        if len(f) >= 6 and f[1] == "FLOCK" and f[5] == want:
            return int(f[4])
    return None


def _open_names(pid: int, ident: tuple[int, int]) -> list[str]:
    """The paths by which process ``pid`` has the file (dev, ino) open."""
    names = []
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return names
    for fd in fds:
        try:
            st = os.stat(fd)
            if (st.st_dev, st.st_ino) == ident:
                names.append(os.readlink(fd))
        except OSError:
            continue
    return names


def _hostname() -> str:
    import socket

    return socket.gethostname()
