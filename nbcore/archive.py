"""A run is an archive: ``runs/<run_id>/`` holds everything a reviewer needs.

Layout (names are contracts other tools read):
  params.yaml            the run's parameters, secrets removed
  manifest.json          run id, params, start/end, status, per-stage records
  NN_<stage>.ipynb/.html each executed notebook and its HTML
  validate_before.json   validate snapshots, shaped like ``runbook status --json``
  validate_after.json
  failures.csv           every load failure (date, source, file, stage, reason, attempt)
  stages/<stage>.json    what each stage reports about itself (merged into the manifest)
  .space-reserve         while running only: room released on a full disk for the manifest's last word

Every file is written atomically (``write_atomic``: temp file, fsync, rename; the temp file is
removed on failure), so a full disk leaves old files whole and new ones absent, never half
written, and ``ArchiveWriteError`` names the file and says "free space, then runbook resume".
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .errors import RunbookError
from .params import RunParams
from .shell import runbook as runbook_command

RUN_STATUSES = ("running", "succeeded", "failed", "blocked")
RESERVE = ".space-reserve"  # released on a full disk so the manifest can record how the run ended
RESERVE_BYTES = 1 << 20
log = logging.getLogger(__name__)


def _default(o: Any):
    if isinstance(o, (date, datetime)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, set):
        return sorted(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


class ArchiveWriteError(RunbookError, OSError):
    """A file of the run archive could not be written (a full disk, a quota, a read-only folder).

    The message names the file and says what to do: free space, then resume the run. The file
    that was being written is left as it was (its old version whole, or absent): never half.
    Still an ``OSError`` for code that catches those; exit code 1 (a stage could not finish). The
    advice follows the error: a read-only file system or a permission problem is not "free space".
    """

    exit_code = 1

    def __init__(self, path: Path, error: OSError):
        self.path, self.errno = Path(path), error.errno
        run_dir = _run_dir_of(self.path)
        what = os.strerror(error.errno) if error.errno else str(error)
        resume = f"`{runbook_command('resume', run_dir.name, '--archive-dir', run_dir.parent)}`" if run_dir is not None \
            else "start the run again (nothing was run)"
        super().__init__(f"cannot write the run archive file {self.path}: {what}. "
                         f"{_archive_fix(error.errno, self.path.parent)}, then {resume}")
        self.errno = error.errno  # OSError.__init__ with one argument reset it to None


def _archive_fix(code: int | None, folder: Path) -> str:
    """What to do about an archive write that failed with ``code``: only a full disk (or quota)
    is "free space"; a read-only file system or a permission problem is worded as such, since
    freeing space fixes neither."""
    import errno

    if _disk_full(code):
        return f"Free space on the archive's disk ({folder})"
    if code == errno.EROFS:
        return (f"The archive's file system is read-only (mounted or remounted read-only): make {folder} "
                f"writable again (e.g. `mount -o remount,rw`)")
    if code in (errno.EACCES, errno.EPERM):
        return f"This user may not write in {folder}: fix its permissions"
    return f"Check the archive's folder and disk ({folder})"


def _run_dir_of(path: Path) -> Path | None:
    """The run archive folder a file belongs to: its folder, or the one above (``stages/``), when it
    holds params.yaml or manifest.json."""
    for p in (path.parent, path.parent.parent):
        if (p / "params.yaml").exists() or (p / "manifest.json").exists():
            return p
    return None


def _write_bytes(f, data: bytes) -> None:
    """The one place archive bytes hit the disk (a test simulates a full disk here)."""
    f.write(data)


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write a file through a temp file in its folder, fsync, and a rename: a reader (or a crash,
    or a full disk) never leaves half a file. On failure the temp file is removed, the old file
    (if any) is untouched, and ``ArchiveWriteError`` names the path."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise ArchiveWriteError(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            _write_bytes(f, raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; archives are shared reports
        os.replace(tmp, path)
    except BaseException as e:  # a full disk, an interrupt: the old file stays whole, no temp file left
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ArchiveWriteError(path, e) from e
        raise
    return path


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (``write_atomic``); a serialization error leaves no file behind."""
    write_atomic(path, json.dumps(data, indent=2, default=_default) + "\n")


def new_run_id(run_name: str, stage: str | None = None, now: datetime | None = None) -> str:
    """``<timestamp>-<run_name>``, plus ``-<stage>`` for a stage run on its own (so two stages
    started within the same second never share an id in processor_run_history)."""
    now = now or datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{run_name}" + (f"-{stage}" if stage else "")


def unique_run_id(archive_dir: Path, run_name: str, stage: str | None = None) -> str:
    """A new run id whose folder does not exist yet in ``archive_dir`` (``-2``, ``-3`` ... if needed)."""
    base = new_run_id(run_name, stage)
    run_id, n = base, 1
    while (Path(archive_dir) / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


@dataclass
class RunArchive:
    """One run's folder."""

    path: Path

    @classmethod
    def create(cls, params: RunParams, run_id: str | None = None) -> "RunArchive":
        run_id = run_id or new_run_id(params.run_name)
        path = Path(params.archive_dir) / run_id
        if path.exists():
            raise FileExistsError(f"run archive {path} already exists; choose another run_name or wait a second")
        path.mkdir(parents=True)
        archive = cls(path)
        try:
            write_atomic(path / "params.yaml", yaml.safe_dump(params.public_dict(), sort_keys=False))
        except ArchiveWriteError:
            path.rmdir()  # no half-made archive: the folder holds nothing yet
            raise
        return archive

    @classmethod
    def open(cls, path: str | Path) -> "RunArchive":
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no run archive at {path}")
        return cls(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: Any) -> Path:
        p = self.file(name)
        write_json_atomic(p, data)
        return p

    def read_json(self, name: str, default: Any = None) -> Any:
        p = self.file(name)
        return json.loads(p.read_text()) if p.exists() else default

    # -- stage records ---------------------------------------------------------
    def record_stage(self, stage: str, record: dict) -> Path:
        """What a stage says about itself: status, rows written per table, retries, errors."""
        from . import profiling

        profiling.write_stage(self.path, stage)  # only when ``nbcore.bench profile`` asked for it
        return self.write_json(f"stages/{stage}.json", record)

    def stage_record(self, stage: str) -> dict | None:
        return self.read_json(f"stages/{stage}.json")

    # -- manifest ----------------------------------------------------------------
    def manifest(self) -> dict:
        return self.read_json("manifest.json", {})

    def write_manifest(self, manifest: dict) -> None:
        """Write ``manifest.json`` atomically. While the run is running, a reserve file
        (``.space-reserve``, 1 MiB) is kept in the archive; when the disk fills up it is released,
        the manifest is written, and a running run is stopped (``ArchiveWriteError``) so that
        the driver can still record how it ended: never left at ``running``. A finished
        manifest releases the reserve."""
        running = manifest.get("status") == "running"
        try:
            self.write_json("manifest.json", manifest)
        except ArchiveWriteError as e:
            if not _disk_full(e.errno) or not self.release_reserve():
                raise  # a read-only or forbidden folder: room would not help, say what it is
            log.warning("%s; released the archive's space reserve to record the run's end", e)
            self.write_json("manifest.json", manifest)
            if running:
                raise  # the disk is full: stop the run now, while the reserve's room can still record its end
        if running:
            self.keep_reserve()
        else:
            self.release_reserve()

    # -- a little space kept for the manifest's last word ------------------------------
    def keep_reserve(self) -> None:
        p = self.file(RESERVE)
        if p.exists():
            return
        try:
            write_atomic(p, b"\0" * RESERVE_BYTES)
        except ArchiveWriteError:
            pass  # no room even for the reserve: the next write says so, naming its file

    def release_reserve(self) -> bool:
        try:
            self.file(RESERVE).unlink()
            return True
        except FileNotFoundError:
            return False
        except OSError as e:  # e.g. the file system went read-only: the reserve stays, the caller says why
            log.warning("could not release the archive's space reserve: %s", e)
            return False


def _disk_full(code: int | None) -> bool:
    import errno

    return code in (errno.ENOSPC, errno.EDQUOT)


def _created_ns(run_dir: Path) -> int:
    """When an archive was made, to the nanosecond (its ``params.yaml`` is written once, at creation):
    orders two runs that started in the same second."""
    try:
        return (run_dir / "params.yaml").stat().st_mtime_ns
    except OSError:
        return 0


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- listing the archived runs (``runbook runs``) ---------------------------------------------------
#: the columns of ``list_runs``, in order
RUNS_COLUMNS = ["run_id", "name", "status", "range", "started_at", "seconds", "stopped_at", "report", "kind"]


def run_alive(manifest: dict) -> bool:
    """Whether the process a ``running`` manifest names may still be running (True when it ran on
    another host or names no pid: this host cannot tell)."""
    import socket

    pid, host = manifest.get("pid"), manifest.get("host")
    if host != socket.gethostname() or not pid:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_row(d: Path, m: dict) -> dict:
    status = m.get("status", "?")
    if status == "running" and not run_alive(m):
        status = "interrupted"
    p = m.get("params") or {}
    if p.get("start_date") or p.get("end_date"):
        rng = f"{p.get('start_date') or '…'} → {p.get('end_date') or '…'}"
    else:
        seasons = p.get("seasons") or []
        rng = (f"season {seasons[0]}" if len(set(seasons)) == 1 else f"seasons {min(seasons)}-{max(seasons)}") \
            if seasons else "all seasons"
    report = d / "report.html"
    seconds = m.get("seconds")
    if seconds is None and m.get("started_at") and m.get("ended_at"):  # a stage run by hand: its span
        try:
            seconds = round((datetime.fromisoformat(m["ended_at"]) - datetime.fromisoformat(m["started_at"]))
                            .total_seconds(), 1)
        except (TypeError, ValueError):
            seconds = None
    return {"run_id": m.get("run_id", d.name), "name": m.get("run_name"), "status": status, "range": rng,
            "started_at": m.get("started_at"), "seconds": seconds, "stopped_at": m.get("stopped_at"),
            "report": str(report) if report.exists() else None, "kind": m.get("kind", "run")}


def _started_key(row: dict, d: Path) -> str:
    """What orders runs in time: the manifest's ``started_at`` (UTC, ISO), else the folder's mtime. A named
    run (``--run-id nightly``) sorts by when it started, never by its name."""
    started = row.get("started_at")
    if started:
        try:
            return datetime.fromisoformat(str(started).replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()
        except ValueError:
            pass
    try:
        return datetime.fromtimestamp(d.stat().st_mtime, timezone.utc).isoformat()
    except OSError:
        return ""


def list_runs(archive_dir: str | Path, records: bool = False):
    """Archived runs, newest first: id, name, status, date range, start, duration, where it stopped,
    report, kind (``run``, or ``interactive`` for a stage run by hand). A folder without a readable
    ``manifest.json`` is not a run and is left out. A DataFrame (``RUNS_COLUMNS``), or with ``records``
    a list of dicts whose missing values are ``None`` (what ``runbook runs --json`` prints)."""
    rows = []
    base = Path(archive_dir)
    for d in base.iterdir() if base.is_dir() else []:
        m_path = d / "manifest.json"
        if not m_path.is_file():
            continue
        try:
            m = json.loads(m_path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(m, dict):
            continue
        row = _run_row(d, m)
        rows.append((_started_key(row, d), _created_ns(d), d.name, row))
    rows.sort(key=lambda x: (x[0], x[1], x[2]), reverse=True)  # same second: the later archive first
    out = [r for *_, r in rows]
    if records:
        return out
    import pandas as pd

    return pd.DataFrame(out, columns=RUNS_COLUMNS)
