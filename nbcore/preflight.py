"""Checks a command makes on the file system before it does any work.

``RunParams`` validates what a value *is*; this module checks what a value *points at*:
the DuckDB file exists (or creating one was asked for), is a file, in a writable folder;
the archive folder can be created; the bucket, the waiver file, the run a ``retry_failed``
names and the Jupyter kernel exist. A problem found here is a usage error (exit 2) that
names the field and the fix, raised before an archive folder, a warehouse file or a lock
file exists, so a typo never leaves debris or, worse, a new empty warehouse that a run
"successfully" backfills.

Commands say what they do with the warehouse:
  * ``read``  (status, plan, why): the warehouse must exist; nothing is created;
  * ``write`` (run, load, gate, derive, predict, grade): the warehouse must exist unless
    ``create_warehouse: true``; its folder and the archive folder must be writable;
  * ``build`` (demo): the warehouse and bucket are (re)created by the command itself;
  * ``resume``: like ``write``, but the warehouse must exist whatever ``create_warehouse`` says: a
    resume never creates a warehouse (the run's work so far is in the one it started on).

Commands that run the stage notebooks (run, resume, demo) can notify a webhook at their end, so
``$RUNBOOK_NOTIFY_WEBHOOK`` is checked with the parameters too.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .errors import UsageError
from .notify import check_env_webhook
from .params import ParamsError, RunParams, check_run_id

FAILURES_FILE = "failures.csv"  # nbcore.load writes it into a run's archive
DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file


def _nearest_existing(path: Path) -> Path:
    for p in [path, *path.parents]:
        if p.exists():
            return p
    return Path("/")


def _writable_folder(path: Path) -> bool:
    """Can files be created in ``path`` (or, if it does not exist yet, in its nearest existing parent)?"""
    base = _nearest_existing(path)
    return base.is_dir() and os.access(base, os.W_OK | os.X_OK)


def duckdb_problems(params: RunParams, mode: str) -> list[str]:
    path = Path(params.duckdb_path)
    out: list[str] = []
    if path.is_dir():
        return [f"duckdb_path: {path} is a folder, not a DuckDB file; give the file inside it, "
                f"e.g. {path / 'warehouse.duckdb'}"]
    if not path.exists():
        if mode == "read":
            out.append(f"duckdb_path: no warehouse at {path}; check the path for a typo, or build the demo warehouse "
                       f"with `runbook demo --build-only --params FILE`")
        elif mode == "resume":
            out.append(f"duckdb_path: no warehouse at {path}; a resume never creates a warehouse (the run's work so "
                       f"far is in the one it started on): put that file back at this path (moved? a disk not "
                       f"mounted?) and resume again; the run is unchanged and still resumable")
        elif mode == "write" and not params.create_warehouse:
            out.append(f"duckdb_path: no warehouse at {path}; check the path for a typo, build the demo with "
                       f"`runbook demo --build-only --params FILE`, or set create_warehouse: true to start a new, "
                       f"empty warehouse there")
        elif not _writable_folder(path.parent):
            out.append(f"duckdb_path: cannot create {path}: {_nearest_existing(path.parent)} is not a writable folder; "
                       f"choose a folder you can write to")
        return out
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError as e:
        return [f"duckdb_path: cannot read {path} ({e.strerror}); fix its permissions"]
    if (len(head) >= 12 and head[8:12] != DUCKDB_MAGIC) or 0 < len(head) < 12:  # too short to be one
        out.append(f"duckdb_path: {path} is not a DuckDB database (no DuckDB header; corrupted, or another kind "
                   f"of file); restore it from a backup or point duckdb_path at the right file")
    elif mode in ("write", "resume"):
        out += _damaged(path)
    if mode in ("write", "build", "resume"):
        if not os.access(path.parent, os.W_OK | os.X_OK):
            out.append(f"duckdb_path: the folder {path.parent} is read-only, and DuckDB writes its journal "
                       f"({path.name}.wal) next to the file; copy the warehouse to a writable folder, or use the "
                       f"read-only commands (status, plan, why)")
        elif not os.access(path, os.W_OK):
            out.append(f"duckdb_path: {path} is read-only; make it writable (chmod u+w) or copy it, or use the "
                       f"read-only commands (status, plan, why)")
    return out


def _damaged(path: Path) -> list[str]:
    """A writing command reads the whole file first: a cut-short file or a garbage block is a usage
    error (exit 2) before an archive exists, not a failed first stage in a new archive."""
    from .warehouse.duckdb_access import damage

    found = damage(str(path))
    if found is None:
        return []
    return [f"duckdb_path: {path} is damaged ({found}); restore it from a backup, point duckdb_path at the "
            f"right file, or rebuild the demo warehouse with `runbook demo --build-only --params FILE`"]


def date_range_problems(params: RunParams) -> list[str]:
    """``start_date``..``end_date`` must hold at least one game of the run's seasons' schedule files.

    A range with no game (``2019-01-01``..``2019-02-01`` for seasons 2021-2025) expects nothing:
    validate and load would run on nothing, and only the gate would stop, unable to say why.
    Seasons whose schedule file cannot be read are not judged (load reports them)."""
    from .expected import schedule_file_games

    start, end = params.date_bounds()
    spans, unread = [], False
    for season in params.season_list:
        games, _ = schedule_file_games(params, season)
        if games is None or not len(games):
            unread = True
            continue
        days = games.game_date
        if ((days >= start) & (days <= end)).any():
            return []
        spans.append(f"{season}: {days.min()} .. {days.max()}")
    if unread or not spans:
        return []
    return [f"start_date/end_date: no game of the schedule is between {start} and {end} (seasons "
            f"{', '.join(str(s) for s in params.season_list)}); the schedule's games run {'; '.join(spans)}. "
            f"Pick dates inside a season, or change seasons"]


def _warn_unknown_games(params: RunParams, waivers) -> None:
    """Say (on stderr, not fatal) which game waivers name a game no schedule file of the run holds."""
    import sys

    if not any(w.games for w in waivers) or "://" in params.bucket:
        return
    from .expected import schedule_games
    from .waivers import unknown_games

    games = schedule_games(None, params)
    if len(games):  # no readable schedule file at all: load reports that, not the waivers
        for line in unknown_games(waivers, games):
            print(f"warning: {line}", file=sys.stderr)


def archive_problems(params: RunParams) -> list[str]:
    base = Path(params.archive_dir)
    if base.exists() and not base.is_dir():
        return [f"archive_dir: {base} is a file, not a folder; point archive_dir at a folder for the run archives, "
                f"e.g. runs"]
    if not _writable_folder(base):
        return [f"archive_dir: cannot create run archives in {base}: {_nearest_existing(base)} is not writable; "
                f"choose a folder you can write to"]
    return []


def kernel_problems(params: RunParams) -> list[str]:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(params.kernel_name)
    except NoSuchKernel:
        known = sorted(KernelSpecManager().find_kernel_specs())
        return [f"kernel_name: no Jupyter kernel {params.kernel_name!r}; installed kernels: {', '.join(known) or 'none'} "
                f"(`jupyter kernelspec list`); set kernel_name to one of them"]
    return []


def preflight(params: RunParams, mode: str, *, command: str = "", run_id: Optional[str] = None,
              notebooks: bool = False) -> RunParams:
    """Raise ``ParamsError`` listing every problem found; return ``params`` unchanged when ready.

    ``mode`` is ``read``, ``write`` or ``build``; ``notebooks`` when the command runs the stage
    notebooks (the kernel must exist); ``run_id`` is an explicit ``--run-id``.
    """
    problems: list[str] = []
    try:
        check_run_id(run_id)
    except ParamsError as e:
        problems.append(str(e))
    if params.backend == "duckdb":
        problems += duckdb_problems(params, mode)
    if mode in ("write", "build", "resume"):
        problems += archive_problems(params)
    if mode == "write" and command in ("run", "load"):
        try:
            params.check_bucket()
        except ParamsError as e:
            problems.append(str(e))
    if mode == "write" and (params.start_date or params.end_date) and "://" not in params.bucket:
        problems += date_range_problems(params)
    if params.waivers is not None and mode != "build":
        from .waivers import load_waivers

        try:
            _warn_unknown_games(params, load_waivers(params))
        except ParamsError as e:
            problems.append(str(e))
    if params.retry_failed and mode in ("write", "resume"):
        run_dir = Path(params.archive_dir) / params.retry_failed
        if not run_dir.is_dir():
            problems.append(f"retry_failed: no run {params.retry_failed!r} in {params.archive_dir}; give the id of a "
                            f"run folder there (`runbook runs` lists them)")
        elif not (run_dir / FAILURES_FILE).is_file():
            problems.append(f"retry_failed: run {params.retry_failed} has no {FAILURES_FILE} (its load stage did not "
                            f"run); give the id of a run whose load failed")
    if notebooks:
        problems += kernel_problems(params)
        try:
            check_env_webhook()
        except UsageError as e:
            problems.append(str(e))
    if problems:
        what = f"`runbook {command}`" if command else "the command"
        raise ParamsError(f"{what} did not start, nothing was written:\n" + "\n".join(f"  - {p}" for p in problems))
    return params
