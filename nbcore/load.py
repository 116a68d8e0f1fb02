"""Load: phase 1 files -> phase 2 raw tables, for the dates that are missing.

What gets loaded:
1. the schedule, one file per season, always first (every other check trusts it);
2. for each dated source, the dates validate reports missing or partial in its raw table
   (``reload``: every expected date in range; ``retry_failed``: only the (source, date)
   pairs a previous run's ``failures.csv`` left unresolved);
3. any unexpected file found in a source's folder is reported as a failure: a file for a
   date without completed games, or a file not named ``<YYYY-MM-DD>.json``.

How (the platform's error policy: retry + continue, never a partial date):
read through ``nbcore.bucket`` -> decode -> JSON -> JSON Schema -> the rules a person would
check (``nbcore.sources.checks``) -> replace that date's rows and record the run in
``processor_run_history``, both in one transaction. A failing (source, date) is retried once,
then the stage moves on. Every failed attempt lands in the run archive's ``failures.csv``
(date, source, file, stage, reason, attempt, resolved) and in ``processor_run_history``.

Every (source, date) ends ``loaded``, ``failed`` (retry later with ``retry_failed``) or
``waived`` (declared unavailable in the waiver file; not read at all).
"""
from __future__ import annotations

import csv
import html
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd
from .record import typed_record
from .stage_run import stage_session
from .progress import tqdm

from . import schema
from .archive import RunArchive, new_run_id
from .bucket import Bucket, FileMissing, TransientReadError, parse_dated_path
from .history import RunRecord, record_runs
from .params import ParamsError, RunParams
from .sources import DATED_SOURCES, SCHEDULE, file_path
from .sources.checks import (FileProblem, ScheduleIndex, check_dated_rules, dated_rules_hold, check_schedule_rules, check_schema, decode, load_json,
                             refuse_oversized)
from .sources.checks import join_reasons
from .sources.parse import POSITION_COLUMNS, frame_of, now_utc, parse_columns, parse_document, row_count
from .warehouse import Warehouse, WarehouseError, open_warehouse
from .waivers import Waiver, waived
from .shell import runbook as runbook_command
from .errors import RunInterrupted
from .runlog import stage_log, stop_requested

STAGE = "load"
PHASE = "2"
FAILURES_FILE = "failures.csv"
FAILURE_COLUMNS = ["date", "source", "file", "stage", "reason", "attempt", "resolved"]
MAX_ATTEMPTS = 2  # the first try and one retry


def read_document(bucket: Bucket, rel: str):
    """One phase 1 file as a parsed JSON document, holding one copy of it at a time.

    A file over the supported size (``sources.checks.MAX_FILE_BYTES``) is refused with
    ``FileTooLarge`` before it is read (its size from the bucket's listing) or, when the bucket
    cannot tell the size, right after the read and before anything is parsed. The bytes are let go
    once decoded and the text once parsed, so the peak is the document plus one transient copy."""
    refuse_oversized(bucket.display(rel), bucket.size(rel))  # junk: refused before it is read into memory
    try:
        raw = bucket.read_bytes(rel)
    except FileMissing:
        raise FileProblem("read", f"file missing in bucket ({bucket.display(rel)})") from None
    except TransientReadError as e:
        raise FileProblem("read", str(e)) from None
    refuse_oversized(bucket.display(rel), len(raw))
    text = decode(raw)
    del raw
    return load_json(text)


def check_file(bucket: Bucket, source: str, day: date, schedule: ScheduleIndex, season_of: dict,
               loaded_at=None) -> pd.DataFrame:
    """The phase 2 rows of one dated source's file, once it passed every check (size, decoding,
    JSON, JSON Schema, the rules a person would check); raises ``FileProblem`` saying why not."""
    return frame_of(source, check_file_columns(bucket, source, day, schedule, season_of, loaded_at))


def check_file_columns(bucket: Bucket, source: str, day: date, schedule: ScheduleIndex, season_of: dict,
                       loaded_at=None) -> dict[str, list]:
    """``check_file``'s rows as columns (name -> list of values, in the table's order). The stage
    keeps each file's rows this way and builds one DataFrame per batch of dates (``_Loader.write``):
    a DataFrame per file cost more than reading, parsing and checking the file together."""
    rel = file_path(source, day)
    doc = read_document(bucket, rel)
    check_schema(source, doc)
    cols = parse_columns(source, doc, rel, loaded_at, season_of=season_of, positions=True)
    if not dated_rules_hold(source, doc, cols, day, schedule):
        # a doubted file: the rules that say why run on a DataFrame; the columns are let go meanwhile,
        # so a junk file of 16 MB costs the document and one copy of its rows, as it did before
        frame = frame_of(source, cols)
        del cols
        check_dated_rules(source, doc, frame, day, schedule)  # raises FileProblem saying why
        del frame
        cols = parse_columns(source, doc, rel, loaded_at, season_of=season_of, positions=True)  # they all held
    del doc
    for c in POSITION_COLUMNS:
        del cols[c]
    return cols


def _batch_frame(source: str, parts: list[dict[str, list]]) -> pd.DataFrame:
    """One DataFrame of the batch's files (each a dict of columns): the lists joined column by column."""
    columns = list(schema.table(source).columns)
    parts = [p for p in parts if row_count(p)]
    return frame_of(source, {c: [v for p in parts for v in p[c]] for c in columns})


def schedule_index(bucket: Bucket, seasons: Iterable[int]) -> tuple[ScheduleIndex, dict]:
    """The schedule of ``seasons`` read straight from their files (no warehouse): the lookups
    ``check_file`` needs (used to load one file on its own, e.g. by ``nbcore.bench.load``)."""
    frames = [parse_document(SCHEDULE, read_document(bucket, file_path(SCHEDULE, season_year=s)),
                             file_path(SCHEDULE, season_year=s)) for s in seasons]
    games = pd.concat(frames, ignore_index=True)
    return ScheduleIndex(games), dict(zip(games.game_id, games.season_year.astype(int)))


def schedule_anchor(season_year: int) -> date:
    """The data_date a season's schedule load is recorded under in processor_run_history."""
    return date(season_year, 10, 1)


def season_of_date(day: date) -> int:
    """The season a calendar date belongs to (seasons start in the autumn)."""
    return day.year if day.month >= 7 else day.year - 1


@dataclass
class Attempt:
    """One failed attempt at one (source, date) (or one unexpected file)."""

    date: Optional[date]
    source: str
    file: str
    stage: str
    reason: str
    attempt: int
    resolved: bool = False  # a later attempt in the same run succeeded

    def message(self) -> str:
        return f"{self.date or 'undated'} {self.source}: {self.reason}"


@dataclass
class Outcome:
    """Where one (source, date) ended: loaded, failed or waived."""

    source: str
    date: Optional[date]
    file: str
    state: str
    rows: int = 0
    attempts: int = 0
    stage: Optional[str] = None
    reason: Optional[str] = None
    seconds: float = 0.0
    note: Optional[str] = None

    @property
    def retried(self) -> bool:
        return self.state == "loaded" and self.attempts > 1


@dataclass
class Stray:
    """A file in a source folder that no expected date explains."""

    source: str
    file: str
    date: Optional[date]
    reason: str


@dataclass
class LoadResult:
    run_id: str
    mode: str
    outcomes: list[Outcome]
    failures: list[Attempt]
    seconds: float
    failure_log: Optional[str] = None
    interrupted: Optional[str] = None  # why the load stopped early (a signal to the driver), or None

    # -- views ----------------------------------------------------------------------
    def by_state(self, state: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == state]

    @property
    def failed(self) -> list[Outcome]:
        return self.by_state("failed")

    @property
    def ok(self) -> bool:
        return not self.failed

    def rows_written(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            if o.state == "loaded" and o.rows:
                fqn = schema.table(o.source).fqn
                out[fqn] = out.get(fqn, 0) + o.rows
        return out

    def summary_table(self) -> pd.DataFrame:
        """One row per source: dates loaded, of which retried, failed, waived, rows written."""
        rows = []
        for source in (SCHEDULE,) + DATED_SOURCES:
            mine = [o for o in self.outcomes if o.source == source]
            if not mine:
                continue
            rows.append({
                "source": source,
                "loaded": sum(o.state == "loaded" for o in mine),
                "retried": sum(o.retried for o in mine),
                "failed": sum(o.state == "failed" for o in mine),
                "waived": sum(o.state == "waived" for o in mine),
                "rows": sum(o.rows for o in mine if o.state == "loaded"),
            })
        frame = pd.DataFrame(rows, columns=["source", "loaded", "retried", "failed", "waived", "rows"])
        if len(frame):
            total = frame.drop(columns="source").sum()
            frame.loc[len(frame)] = {"source": "total", **total.to_dict()}
        return frame

    def failures_frame(self) -> pd.DataFrame:
        return pd.DataFrame([_failure_row(a) for a in self.failures], columns=FAILURE_COLUMNS)

    def outcomes_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(o) for o in self.outcomes],
                            columns=["source", "date", "file", "state", "rows", "attempts", "stage", "reason", "seconds", "note"])

    def summary(self) -> dict:
        """The stage record (``stages/load.json``)."""
        failed = self.failed
        return {
            # the stage itself succeeded: failures are recorded and the gate decides whether the run may go on
            "status": "interrupted" if self.interrupted else "succeeded",
            **({"reason": self.interrupted} if self.interrupted else {}),
            "run_id": self.run_id,
            "mode": self.mode,
            "complete": not failed,
            "rows_written": self.rows_written(),
            "loaded": len(self.by_state("loaded")),
            "retried": sum(o.retried for o in self.outcomes),
            "failed": len(failed),
            "waived": len(self.by_state("waived")),
            "retries": sum(max(0, o.attempts - 1) for o in self.outcomes),
            "failures": [
                {"date": o.date, "source": o.source, "file": o.file, "stage": o.stage, "reason": o.reason}
                for o in failed
            ],
            "waived_dates": [{"date": o.date, "source": o.source, "reason": o.note} for o in self.by_state("waived")],
            "failure_log": self.failure_log,
            "retry_command": self.retry_command() if failed else None,
            "seconds": round(self.seconds, 3),
        }

    def retry_command(self, params_file: str = "PARAMS.yaml") -> str:
        if self.failure_log:
            params_file = str(Path(self.failure_log).parent / "params.yaml")
        return runbook_command("load", "--params", params_file, "--retry-failed", self.run_id)

    def _repr_html_(self) -> str:
        head = (f"<p><b>load</b> ({self.mode}) run {self.run_id}: {len(self.by_state('loaded'))} loaded, "
                f"{sum(o.retried for o in self.outcomes)} retried, {len(self.failed)} failed, "
                f"{len(self.by_state('waived'))} waived in {self.seconds:.1f} s</p>")
        out = head + self.summary_table().to_html(index=False)
        if self.failed:
            out += "<p><b>Failed</b> (retry with <code>" + html.escape(self.retry_command()) + "</code>)</p>"
            out += self.outcomes_frame().query("state == 'failed'")[["date", "source", "stage", "reason"]].to_html(index=False)
        return out


def _failure_row(a: Attempt) -> dict:
    return {"date": a.date.isoformat() if a.date else "", "source": a.source, "file": a.file, "stage": a.stage,
            "reason": a.reason, "attempt": a.attempt, "resolved": a.resolved}


# -- planning ------------------------------------------------------------------------------

def read_failure_log(params: RunParams, run_id: str) -> list[dict]:
    """The unresolved failures of a previous run (``retry_failed``)."""
    path = Path(params.archive_dir) / run_id / FAILURES_FILE
    if not path.is_file():
        if not (Path(params.archive_dir) / run_id).is_dir():
            raise ParamsError(f"retry_failed: no run {run_id!r} in {params.archive_dir}; give the id of a run folder there")
        raise ParamsError(f"retry_failed: run {run_id} has no {FAILURES_FILE} (its load stage did not run or had no failures)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if str(r.get("resolved", "")).lower() not in ("true", "1")]


def find_strays(bucket: Bucket, sources: Iterable[str], expected: dict[date, int], in_scope) -> list[Stray]:
    """Files in the source folders that no expected date explains (within the run's scope)."""
    out = []
    for source in sources:
        for rel in bucket.listing(source):
            parsed = parse_dated_path(rel)
            if parsed and parsed[0] == source:
                day = parsed[1]
                if in_scope(day) and day not in expected:
                    out.append(Stray(source, rel, day, f"unexpected file {rel}: the schedule has no completed games on {day}; "
                                                        f"remove the file from the bucket, or fix the schedule"))
                continue
            prefix = rel.split("/", 1)[-1][:10]
            try:
                day = date.fromisoformat(prefix)
            except ValueError:
                day = None
            if day is None or in_scope(day):
                out.append(Stray(source, rel, day, f"unexpected file {rel}: not named <YYYY-MM-DD>.json, so it is never "
                                                    f"loaded; move it out of {source}/ or rename it"))
    return out


@dataclass
class _Plan:
    schedule_seasons: list[int]
    tasks: list[tuple[str, date]]  # (source, date), in date order per source
    strays: list[Stray] = field(default_factory=list)


def _in_scope(params: RunParams):
    start, end = params.date_bounds()
    seasons = set(params.season_list)
    return lambda d: start <= d <= end and season_of_date(d) in seasons


def _selected_sources(params: RunParams) -> list[str]:
    return [s for s in DATED_SOURCES if params.table_selected(s)]


def _plan(params: RunParams, wh: Warehouse, bucket: Bucket, games: pd.DataFrame, mode: str) -> _Plan:
    sources = _selected_sources(params)
    in_scope = _in_scope(params)
    final = games[games.game_status == "final"]
    expected_days = {d: n for d, n in final.groupby("game_date").size().items() if in_scope(d)}
    wanted: dict[str, set[date]] = {s: set() for s in sources}
    if mode == "retry_failed":
        for row in read_failure_log(params, params.retry_failed):
            if row["source"] in wanted and row.get("date"):
                wanted[row["source"]].add(date.fromisoformat(row["date"]))
    elif mode == "reload":
        for s in sources:
            wanted[s] = set(expected_days)
    else:
        from .validate import run_validate

        result = run_validate(params.model_copy(update={"tables": sources}), wh, progress=False,
                              apply_waivers=False) if sources else None  # waived dates end "waived", below
        for s in sources:
            wanted[s] = set(result.missing_dates(s)) | set(result.partial_dates(s))
    strays = find_strays(bucket, sources, expected_days, in_scope)
    for st in strays:  # a dated stray is handled (and reported) as that date's task
        if st.date is not None and st.date not in expected_days and st.source in wanted:
            wanted[st.source].add(st.date)
    undated = [st for st in strays if not (st.date is not None and st.date not in expected_days)]
    tasks = [(s, d) for s in sources for d in sorted(wanted[s])]
    return _Plan(schedule_seasons=list(params.season_list), tasks=tasks, strays=undated)


# -- the stage ---------------------------------------------------------------------------------

class _Loader:
    def __init__(self, params: RunParams, wh: Warehouse, bucket: Bucket, run_id: str):
        self.params, self.wh, self.bucket, self.run_id = params, wh, bucket, run_id
        self.failures: list[Attempt] = []
        self.outcomes: list[Outcome] = []
        self.loaded_at = now_utc()
        self.games = pd.DataFrame()
        self.season_of: dict[str, int] = {}
        self._root: Optional[Path] = None

    def refresh_schedule(self) -> None:
        g = self.wh.query_file("load/schedule_games")
        g["game_date"] = pd.to_datetime(g.game_date).dt.date
        self.games = g
        self.schedule = ScheduleIndex(g)
        self.season_of = dict(zip(g.game_id, g.season_year.astype(int)))

    def _history(self, source: str, day: date, attempt: int, ok: bool, rows: int, error: Optional[str], t0: float) -> RunRecord:
        return RunRecord(run_id=self.run_id, stage=STAGE, phase=PHASE, processor=source, data_date=day, success=ok,
                         rows_written=rows, error=error, attempt=attempt, seconds=time.perf_counter() - t0)

    def _fail(self, source: str, day: Optional[date], rel: str, stage: str, reason: str, attempt: int, t0: float,
              history_day: Optional[date] = None) -> None:
        self.failures.append(Attempt(day, source, rel, stage, reason, attempt))
        hday = history_day or day
        if hday is not None:
            record_runs(self.wh, [self._history(source, hday, attempt, False, 0, reason, t0)])

    def _read(self, rel: str):
        self._refuse_escape(rel)
        return read_document(self.bucket, rel)

    def _bucket_root(self) -> Path:
        """The bucket folder's real path, resolved once per load (not once per file)."""
        if self._root is None:
            self._root = Path(self.bucket.root).resolve()
        return self._root

    def _refuse_escape(self, rel: str) -> None:
        """A local bucket's file must really be in the bucket: a symbolic link pointing elsewhere is not
        loaded (it would make any file on the machine look like phase 1 data)."""
        if not self.bucket.is_local:
            return
        root = self._bucket_root()
        full = Path(self.bucket.full_path(rel))
        try:
            real = full.resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            raise FileProblem("read", f"{rel} cannot be resolved ({e}); replace the link with the file itself") from None
        if not real.is_relative_to(root):
            raise FileProblem("read", f"{rel} is a symbolic link to {real}, outside the bucket {root}; copy the file "
                                      f"into the bucket if it belongs there, or remove the link")

    def _schedule_elsewhere(self, rows: pd.DataFrame, season: int) -> None:
        """A game id listed by another season's schedule file is refused (it would be stored twice)."""
        other = self.wh.query_file("load/schedule_elsewhere",
                                   {"game_ids": rows.game_id.tolist(), "season_year": season})
        if len(other):
            problems = [f"game {r.game_id} is already in the schedule of season {int(r.season_year)} ({r.source_file}); "
                        f"a game belongs to one season: remove it from one of the two files"
                        for r in other.itertuples(index=False)]
            raise FileProblem("rules", join_reasons(problems))

    # -- the schedule ----------------------------------------------------------------------
    def load_schedule(self, season: int, have_games: int) -> Outcome:
        rel = file_path(SCHEDULE, season_year=season)
        out = Outcome(SCHEDULE, schedule_anchor(season), rel, "failed")
        t_start = time.perf_counter()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            t0 = time.perf_counter()
            out.attempts = attempt
            try:
                if attempt == 1 and not self.bucket.exists(rel) and not have_games:
                    out.state, out.attempts, out.note = "skipped", 0, f"no schedule file and no games for season {season}: nothing expected"
                    return out
                doc = self._read(rel)
                check_schema(SCHEDULE, doc)
                rows = parse_document(SCHEDULE, doc, rel, self.loaded_at, positions=True)
                check_schedule_rules(doc, rows, season)
                self._schedule_elsewhere(rows, season)
                rows = rows.drop(columns=list(POSITION_COLUMNS))
                with self.wh.transaction():
                    n = self.wh.replace_range(schema.table(SCHEDULE).fqn, date(1900, 1, 1), date(2999, 12, 31), frame=rows,
                                              where="season_year = @season_year", params={"season_year": season})
                    record_runs(self.wh, [self._history(SCHEDULE, out.date, attempt, True, n, None, t0)])
                out.state, out.rows = "loaded", n
                break
            except WarehouseError as e:
                out.stage, out.reason = "write", f"writing the rows failed: {e}"
                self._fail(SCHEDULE, None, rel, "write", out.reason, attempt, t0, history_day=out.date)
            except Exception as e:  # FileProblem, or a file nobody foresaw: never stops the load
                if not isinstance(e, FileProblem):
                    e = FileProblem("check", f"unexpected error while checking the file: {type(e).__name__}: {e}")
                reason = e.reason + (f"; kept the {have_games} games already loaded" if have_games and attempt == MAX_ATTEMPTS else "")
                out.stage, out.reason = e.stage, reason
                self._fail(SCHEDULE, None, rel, e.stage, reason, attempt, t0, history_day=out.date)
        out.seconds = time.perf_counter() - t_start
        return out

    # -- one dated source, one date -----------------------------------------------------
    def prepare(self, source: str, day: date, waiver: Optional[Waiver]) -> tuple[Outcome, Optional[dict[str, list]]]:
        """Read and check one date's file (retrying once); the rows to write (as columns), or a failed outcome."""
        rel = file_path(source, day)
        out = Outcome(source, day, rel, "failed")
        if waiver is not None:
            out.state, out.note = "waived", f"{waiver.reason} (approved by {waiver.approved_by})"
            return out, None
        t_start = time.perf_counter()
        expected = day in self.schedule.final_by_day
        rows = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            t0 = time.perf_counter()
            out.attempts = attempt
            try:
                if not expected:
                    if self.bucket.exists(rel):
                        raise FileProblem("unexpected", f"unexpected file {rel}: the schedule has no completed games on {day}; "
                                                        f"remove the file from the bucket, or fix the schedule")
                    out.state, out.note = "loaded", f"no completed games on {day}: nothing to load"
                    rows = {c: [] for c in schema.table(source).columns}
                    break
                self._refuse_escape(rel)
                rows = check_file_columns(self.bucket, source, day, self.schedule, self.season_of, self.loaded_at)
                out.state = "loaded"
                break
            except FileProblem as e:
                out.stage, out.reason = e.stage, e.reason
                self._fail(source, day, rel, e.stage, e.reason, attempt, t0)
            except Exception as e:  # a file nobody foresaw must not stop the other dates
                out.stage, out.reason = "check", f"unexpected error while checking the file: {type(e).__name__}: {e}"
                self._fail(source, day, rel, "check", out.reason, attempt, t0)
        out.seconds = time.perf_counter() - t_start
        return out, rows

    def write(self, batch: list[tuple[Outcome, dict[str, list]]]) -> None:
        """Replace the batch's dates (one source) in one transaction; date by date if that fails.

        Every date of the batch passed its checks, so writing them together keeps the
        "never a partial date" promise and saves a transaction per date. The batch's rows become
        one DataFrame here (its files' columns joined), not one per file.
        """
        if not batch:
            return
        source = batch[0][0].source
        table = schema.table(source).fqn
        days = [o.date for o, _ in batch]
        t0 = time.perf_counter()
        try:
            frame = _batch_frame(source, [cols for _, cols in batch])
            with self.wh.transaction():
                self.wh.replace_range(table, min(days), max(days), frame=frame, where="game_date IN UNNEST(@_days)",
                                      params={"_days": days})
                self._mark_loaded(batch, t0)
            return
        except WarehouseError:
            if len(batch) == 1:
                pass
            else:
                for item in batch:
                    self.write([item])
                return
        out, rows = batch[0]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            t0 = time.perf_counter()
            try:
                with self.wh.transaction():
                    self.wh.replace_range(table, out.date, out.date, frame=_batch_frame(source, [rows]))
                    self._mark_loaded(batch, t0, attempt_offset=attempt)
                return
            except WarehouseError as e:
                out.state, out.stage, out.reason = "failed", "write", f"writing the rows failed: {e}"
                self._fail(source, out.date, out.file, "write", out.reason, out.attempts + attempt, t0)

    def _mark_loaded(self, batch: list[tuple[Outcome, dict[str, list]]], t0: float, attempt_offset: int = 0) -> None:
        records = []
        for out, rows in batch:
            n = row_count(rows)
            out.state, out.rows, out.stage, out.reason = "loaded", n, None, None
            out.attempts += attempt_offset
            records.append(self._history(out.source, out.date, out.attempts, True, n, None, t0))
            for a in self.failures:
                if a.source == out.source and a.date == out.date and a.file == out.file:
                    a.resolved = True
        record_runs(self.wh, records)


def run_load(
    params: RunParams,
    wh: Warehouse | None = None,
    archive: RunArchive | None = None,
    progress: bool = True,
    *,
    bucket: Bucket | None = None,
) -> LoadResult:
    """Load the missing (or, with ``reload``, every) phase 2 date of the run's range from the bucket.

    Never raises for a bad file or a failed date: each is retried once, recorded, and the
    stage moves on; the gate decides whether the run may continue. Run by hand (no archive),
    the stage takes the warehouse lock and records itself in an archive of its own.
    """
    t_start = time.perf_counter()
    waivers = waived(params)  # validates the waiver file before any work
    if params.retry_failed:
        read_failure_log(params, params.retry_failed)  # a wrong run id fails before any work
    with stage_session(params, STAGE, archive) as archive:
        return _run_load(params, wh, archive, progress, bucket, waivers, t_start)


def _run_load(params: RunParams, wh: Warehouse | None, archive: RunArchive | None, progress: bool,
              bucket: Bucket | None, waivers: dict, t_start: float) -> LoadResult:
    mode = "retry_failed" if params.retry_failed else ("reload" if params.reload else "missing")
    run_id = archive.run_id if archive is not None else new_run_id(params.run_name)
    bucket = bucket or Bucket(params.bucket)
    own = wh is None
    wh = wh or open_warehouse(params)
    try:
        loader = _Loader(params, wh, bucket, run_id)
        interrupted: Optional[str] = None
        have = wh.query_file("load/schedule_seasons")
        have_games = dict(zip(have.season_year.astype(int), have.games.astype(int)))
        for season in params.season_list:  # always first: every other check trusts the schedule
            loader.outcomes.append(loader.load_schedule(season, have_games.get(season, 0)))
        loader.refresh_schedule()
        plan = _plan(params, wh, bucket, loader.games, mode)
        bar = tqdm(plan.tasks, desc="load", unit="date", disable=not progress)
        batch: list[tuple[Outcome, dict[str, list]]] = []
        stage_log(STAGE, f"{len(plan.tasks)} file(s) to load")
        for i, (source, day) in enumerate(bar):
            bar.set_postfix_str(f"{source} {day}", refresh=False)
            if batch and (batch[0][0].source != source or len(batch) >= wh.load_batch_dates):
                _write_logged(loader, batch, i, len(plan.tasks))
                batch = []
            signal_name = stop_requested() if not batch else None  # a stop request, at a batch boundary
            if signal_name is not None:
                interrupted = (f"load interrupted by {signal_name} before {source} {day} "
                               f"({i} of {len(plan.tasks)} files done)")
                stage_log(STAGE, interrupted)
                break
            out, rows = loader.prepare(source, day, waivers.get((source, day)))
            loader.outcomes.append(out)
            if rows is not None:
                batch.append((out, rows))
        _write_logged(loader, batch, len(plan.tasks), len(plan.tasks))
        for st in ([] if interrupted else plan.strays):
            t0 = time.perf_counter()
            loader._fail(st.source, st.date, st.file, "unexpected", st.reason, 1, t0)
            loader.outcomes.append(Outcome(st.source, st.date, st.file, "failed", attempts=1, stage="unexpected", reason=st.reason))
    finally:
        if own:
            wh.close()
    result = LoadResult(run_id=run_id, mode=mode, outcomes=loader.outcomes, failures=loader.failures,
                        seconds=time.perf_counter() - t_start, interrupted=interrupted)
    if archive is not None:
        result.failure_log = str(write_failure_log(archive, result.failures))
        archive.write_json("load_outcomes.json", [asdict(o) for o in result.outcomes])
        archive.record_stage(STAGE, typed_record(STAGE, result.summary()))
    if interrupted:  # the record says so; the resumed load loads what is still missing
        raise RunInterrupted(interrupted)
    return result


def _write_logged(loader: "_Loader", batch: list, done: int, total: int) -> None:
    """Write one batch (one transaction) and say so in the run log."""
    if not batch:
        return
    t0 = time.perf_counter()
    loader.write(batch)
    source, days = batch[0][0].source, [o.date for o, _ in batch]
    rows = sum(o.rows for o, _ in batch if o.state == "loaded")
    failed = sum(o.state == "failed" for o, _ in batch)
    stage_log(STAGE, f"batch {source} {min(days)}..{max(days)} ({len(days)} date(s), {done}/{total} files) written: "
                     f"{rows:,} rows in {time.perf_counter() - t0:.1f} s" + (f", {failed} failed" if failed else ""))


def write_failure_log(archive: RunArchive, failures: list[Attempt]) -> Path:
    """``failures.csv`` in the run archive (header only when nothing failed)."""
    import io

    from .archive import write_atomic

    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=FAILURE_COLUMNS)
    w.writeheader()
    for a in failures:
        w.writerow(_failure_row(a))
    return write_atomic(archive.file(FAILURES_FILE), buf.getvalue())  # never half a failures.csv
