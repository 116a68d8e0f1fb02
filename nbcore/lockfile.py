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
