"""The phase 1 bucket, read through fsspec: a local folder by default, ``gs://`` with gcsfs.

Paths given to a ``Bucket`` are relative to its root (``bdl_player_boxscores/2024-04-03.json``),
the same relative path that lands in every raw row's ``source_file``.

The demo bucket can be told to fail one read (a transient fault, so that the load stage's
retry is exercised for real): a marker ``_faults/<source>/<YYYY-MM-DD>.fail-once`` makes the
next read of that source's file for that date raise ``TransientReadError`` and removes the
marker, so the retry succeeds. Real buckets simply have no ``_faults`` folder.
"""
from __future__ import annotations

from .errors import RunbookError

import re
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

import fsspec

from .sources import DATED_SOURCES, FAULTS_DIR, SCHEDULE

_DATED = re.compile(r"^(?P<source>[a-z0-9_]+)/(?P<day>\d{4}-\d{2}-\d{2})\.json$")


class BucketError(RunbookError, IOError):
    """The bucket cannot be reached at all (wrong URL, missing gcsfs, no permission)."""


class TransientReadError(RunbookError, IOError):
    """A read that failed for a reason that may go away on retry (network, fault marker)."""


class FileMissing(RunbookError, FileNotFoundError):
    """The file is not in the bucket."""


@dataclass
class Bucket:
    """One bucket root. ``url`` is a local folder or an fsspec URL (``gs://bucket/prefix``)."""

    url: str

    @cached_property
    def _fs_root(self):
        try:
            fs, root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as e:
            protocol = self.url.split("://", 1)[0]
            hint = " install the gcs extra: pip install 'backfill-runbook[gcs]'" if protocol in ("gs", "gcs") else ""
            raise BucketError(f"cannot open bucket {self.url}: {e}.{hint}") from e
        return fs, root.rstrip("/")

    @property
    def fs(self):
        return self._fs_root[0]

    @property
    def root(self) -> str:
        return self._fs_root[1]

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    def full_path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def display(self, rel: str) -> str:
        """Where a person finds the file (the URL for remote buckets, the path for local ones)."""
        if self.is_local:
            return str(Path(self.root) / rel)
        return f"{self.url.rstrip('/')}/{rel}"

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.full_path(rel)))

    def size(self, rel: str) -> int | None:
        """The file's size in bytes, or None when it cannot be told (missing: ``read_bytes`` says so)."""
        try:
            return int(self.fs.size(self.full_path(rel)))
        except (OSError, TypeError, ValueError):
            return None

    def read_bytes(self, rel: str) -> bytes:
        """The file's bytes. Raises ``FileMissing`` or ``TransientReadError``."""
        self._consume_fault(rel)
        try:
            with self.fs.open(self.full_path(rel), "rb") as f:
                return f.read()
        except FileNotFoundError as e:
            raise FileMissing(f"file missing in bucket ({rel})") from e
        except (IsADirectoryError, PermissionError) as e:
            raise FileMissing(f"cannot read {rel}: {e}") from e
        except OSError as e:  # network hiccups, timeouts: worth one retry
            raise TransientReadError(f"read of {rel} failed: {e}") from e

    def _consume_fault(self, rel: str) -> None:
        m = _DATED.match(rel)
        if not m:
            return
        marker = self.full_path(f"{FAULTS_DIR}/{m['source']}/{m['day']}.fail-once")
        if self.fs.exists(marker):
            self.fs.rm(marker)
            raise TransientReadError(f"transient read error on {rel} (injected fault; a retry should succeed)")

    def listing(self, source: str) -> list[str]:
        """Relative paths of every file under a source's folder (empty if the folder is absent)."""
        base = self.full_path(source)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        prefix = self.root + "/"
        out = []
        for p in found:
            p = str(p)
            if p.startswith(prefix):
                out.append(p[len(prefix):])
            elif p.startswith(prefix.lstrip("/")):
                out.append(p[len(prefix.lstrip("/")):])
        return sorted(out)


def parse_dated_path(rel: str) -> tuple[str, date] | None:
    """``("bdl_player_boxscores", date(2024, 4, 3))`` for a well-named dated file, else None."""
    m = _DATED.match(rel)
    if not m or m["source"] not in DATED_SOURCES:
        return None
    try:
        return m["source"], date.fromisoformat(m["day"])
    except ValueError:
        return None


def schedule_path_season(rel: str) -> int | None:
    m = re.match(rf"^{SCHEDULE}/(\d{{4}})\.json$", rel)
    return int(m.group(1)) if m else None
