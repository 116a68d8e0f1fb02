"""Machine-wide caches of what the runbook can always make again (fitted walk-forward models, SQL
translations): where each lives, and reading and writing one entry.

Speed only, never results: an entry is found by a digest of everything it was made from, so a
cache that is off, missing, unreadable or unwritable only means the work is done again. An entry
is written whole to a temporary file and renamed into place, so a concurrent reader (another run,
another kernel, a worker thread) never sees half of one.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

OFF = ("off", "0", "false", "none")


def folder(env: str, name: str) -> Optional[Path]:
    """The cache folder ``$<env>``, else ``~/.cache/backfill-runbook/<name>`` (``$XDG_CACHE_HOME``
    instead of ``~/.cache`` when set); None when ``$<env>`` is ``off``."""
    value = os.environ.get(env, "").strip()
    if value.lower() in OFF:
        return None
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "backfill-runbook" / name


def read(where: Optional[Path], entry: str) -> Optional[str]:
    """The text of ``entry``, or None (the cache is off, or the entry is not there or unreadable)."""
    if where is None:
        return None
    try:
        return (where / entry).read_text()
    except OSError:
        return None


def write(where: Optional[Path], entry: str, text: str) -> None:
    """Keep ``text`` as ``entry`` (best effort: a folder that cannot be written is skipped)."""
    if where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
        tmp = where / f".{entry}.{os.getpid()}.{threading.get_ident()}.tmp"  # one writer per temp file
        tmp.write_text(text)
        os.replace(tmp, where / entry)
    except OSError:
        pass
