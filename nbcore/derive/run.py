"""``run_derive``: phase 3 then phase 4 over a set of game dates, chunk by chunk.

A chunk is the requested game dates that fall within ``chunk_days`` calendar days of its first
date; ``chunk_days: 1`` is the platform's date-by-date behaviour, larger chunks are the fast path
(each processor is one set-based statement per chunk). A chunk replaces exactly its own dates:
a date inside its span that was not requested (already complete, waived) is neither deleted nor
written (the SQL's ``@dates`` and ``replace_range``'s ``where`` both name the chunk's dates).
For each chunk, in order:

1. defensive checks (unless ``backfill_mode`` or ``strict_mode: false``, both announced), made
   from one read for the whole stage taken before the first chunk (``checks.read_check_inputs``);
2. one transaction: every processor replaces the chunk's date range of its table, in processor
   order, and one ``processor_run_history`` row per processor per date is written. A crash
   anywhere inside rolls the whole chunk back: no partial chunk is ever visible;
3. on any failure the run stops: later chunks are not run, the failure is recorded in
   ``processor_run_history`` and the result names the date, the processor and the error.

Re-running changes nothing: every value is a function of the warehouse's phase 2 rows.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Optional

import pandas as pd

from .. import lineage, profiling, program, targets
from ..chunks import make_chunks
from ..archive import RunArchive, new_run_id
from ..errors import RunbookError, RunInterrupted, StageFailed
from ..params import RunParams
from ..sqlfiles import read_sql
from ..stage_run import ChunkContext, ChunkWork, run_chunks, stage_session
from ..warehouse import Warehouse, open_warehouse
from ..warehouse.base import WriteCount
from ..waivers import waived_by_table
from .checks import CheckInputs, DependencyError, Schedule, check_chunk, read_check_inputs
from .processors import PROCESSORS, Processor, selected_processors
from .result import DeriveResult

STAGE = "derive"
log = logging.getLogger(__name__)


class DeriveFailed(StageFailed):
    """A derive chunk failed (recorded in history and the stage record); ``result`` says where."""

    def __init__(self, result: DeriveResult):
        super().__init__(f"derive stopped at {result.failed_date} in {result.failed_processor}: {result.error}",
                         stage=STAGE, record=result.summary())
        self.result = result


def _announce(result: DeriveResult, message: str, progress: bool) -> None:
    """A bypass is always recorded in the result (and the stage record); shown when interactive."""
    result.bypasses.append(message)
    log.info(message)
    if progress:
        print(f"WARNING: {message}")


def windows_for(schedule: Schedule) -> lineage.Windows:
    """The read windows of the derive tables on this schedule (the lineage rule)."""
    return lineage.Windows.from_dates(schedule.season_of)


def scope_dates(params: RunParams, schedule: Schedule) -> list[date]:
    """Completed game dates inside the run's seasons and date window."""
    return targets.scope_dates(params, schedule.season_of)


def run_derive(
    params: RunParams,
    wh: Optional[Warehouse] = None,
    archive: Optional[RunArchive] = None,
    progress: bool = True,
    dates: Optional[Iterable[date]] = None,
    skip_dates: Optional[Iterable[date]] = None,
    params_file: Optional[str] = None,
    raise_on_failure: bool = True,
) -> DeriveResult:
    """Derive phases 3 and 4 for the run's dates; stop at the first failing chunk.

    ``dates``: explicit game dates to derive (default: every date inside the run's seasons and
    window on which a phase 3/4 table is missing a game). ``skip_dates``: waived dates, never
    derived, reported as skipped, and not treated as gaps by the defensive checks (pass
    ``waived_skip_dates(params)`` for the run's waivers). With an archive the result goes to
    ``stages/derive.json``. ``params_file`` only names the file in the fix commands of errors.

    The stage executes the plan's chunks (``nbcore.program``: the run's ``plan.json``, else a
    one-stage plan made now), each processor its own target dates within them, and writes
    only rows whose value changed (``Warehouse.write_changes``), recording lineage. A failing
    chunk is recorded, then ``DeriveFailed`` is raised (``raise_on_failure=False`` returns the
    failed result instead, for callers that render it).
    """
    with stage_session(params, STAGE, archive) as archive:
        return _run_derive(params, wh, archive, progress, dates, skip_dates, params_file, raise_on_failure)


def _run_derive(params: RunParams, wh: Optional[Warehouse], archive: Optional[RunArchive], progress: bool,
                dates: Optional[Iterable[date]], skip_dates: Optional[Iterable[date]], params_file: Optional[str],
                raise_on_failure: bool) -> DeriveResult:
    t_run = time.perf_counter()
    own = wh is None
    wh = wh or open_warehouse(params)
    try:
        run_id = archive.run_id if archive else new_run_id(params.run_name, "derive")
        procs = selected_processors(params)
        checks = not params.backfill_mode and params.strict_mode
        result = DeriveResult(run_id=run_id, chunk_days=params.chunk_days, checks_enabled=checks,
                              processors=[p.name for p in procs])
        if params.backfill_mode:
            _announce(result, "backfill_mode: defensive checks bypassed (upstream success and lookback gaps "
                              "are not checked; processor order is still enforced)", progress)
        if not params.strict_mode:
            _announce(result, "strict_mode: false: defensive checks skipped", progress)

        schedule = Schedule(wh.query_file("derive/final_games"))
        skip = {pd.Timestamp(d).date() for d in (skip_dates or ())}
        if dates is not None:  # exactly these dates, every selected table: the caller's choice, not a plan's
            final = set(schedule.dates)
            explicit = sorted({pd.Timestamp(d).date() for d in dates} & final)
            result.skipped_dates = sorted(skip & set(explicit))
            todo = [d for d in explicit if d not in skip]
            per_table = {p.table.fqn: set(todo) for p in procs}
            chunks = make_chunks(todo, params.chunk_days, schedule.season_of)
        else:  # the plan's chunks (plan.json inside a run; a one-stage plan by hand), never targets of its own
            prog = program.for_stage(wh, params, STAGE, archive, exclude=skip)
            chunks = prog.remaining
            result.skipped_dates = list(prog.skipped)
            per_table = {p.table.fqn: prog.dates_of(p.table.fqn) for p in procs}
            result.stale_dates = {p.table.fqn: [d.isoformat() for d in prog.stale(p.table.fqn)]
                                  for p in procs if prog.stale(p.table.fqn)}
            skip |= set(prog.skipped)
        result.requested_dates = [d for c in chunks for d in c]
        work = _ChunkPlan(
            wh=wh, schedule=schedule, procs=procs, produced={p.table.fqn for p in procs}, checks=checks,
            result=result, excused=frozenset(skip), params_file=params_file, per_table=per_table,
            windows=windows_for(schedule), run_id=run_id,
            waived=waived_by_table(params, wh) if checks else {},  # a raw source's own waived dates are no gap
        )
        if checks:
            work.read_checks(chunks)
        failure = run_chunks(
            wh, stage=STAGE, run_id=run_id, chunks=chunks,
            body=work.run, record=result, processor=procs[0].name if procs else "",
            phase=procs[0].phase if procs else "", progress=progress, describe_failure=_describe_failure,
            on_outcome=program.outcome_recorder(archive, STAGE),
        )
        result.processed_dates = [d for c in result.chunks if c.status == "succeeded" for d in c.dates]
        if failure is not None:
            result.failed_date = failure.chunk[0]
            result.failed_chunk = (failure.chunk[0], failure.chunk[-1])
            result.failed_processor = failure.processor
            result.error = failure.message
            result.dependency = failure.error.to_dict() if isinstance(failure.error, DependencyError) else None
            result.not_run_dates = [d for c in result.chunks if c.status == "not_run" for d in c.dates]
        result.seconds = time.perf_counter() - t_run
        if archive is not None:
            archive.record_stage(STAGE, result.summary())
        if result.status == "interrupted":  # a signal to the driver: stopped at a chunk boundary
            raise RunInterrupted(result.reason)
        if not result.ok and raise_on_failure:
            raise DeriveFailed(result)
        return result
    finally:
        if own:
            wh.close()


class _ChecksCouldNotRun(RunbookError):
    """A defensive check's query failed (not a failed check): the chunk fails with this message."""


def _describe_failure(ctx: ChunkContext, e: BaseException) -> str:
    if isinstance(e, (DependencyError, _ChecksCouldNotRun)):
        return str(e)
    return f"{type(e).__name__}: {e}"


@dataclass
class _ChunkPlan:
    """Everything one derive chunk needs; ``run`` is the chunk body ``run_chunks`` calls inside
    the chunk's transaction."""

    wh: Warehouse
    schedule: Schedule
    procs: list[Processor]
    produced: set[str]
    checks: bool
    result: DeriveResult
    excused: frozenset[date]
    params_file: Optional[str]
    per_table: dict[str, set[date]]
    windows: lineage.WindowFn
    run_id: str
    waived: dict
    check_inputs: Optional[CheckInputs] = None
    check_read_error: Optional[BaseException] = None

    def read_checks(self, chunks: list[list[date]]) -> None:
        """Read what every chunk's defensive checks need, once, before the first chunk runs.

        A read that fails is not a failed check: it is kept, and the first chunk fails with it
        (as a per-chunk read failing would), so the stage stops there and records why."""
        t = time.perf_counter()
        try:
            self.check_inputs = read_check_inputs(self.wh, self.schedule, self.procs, chunks, self.produced,
                                                  self.excused, self.waived)
        except Exception as e:  # noqa: BLE001 - reported by the first chunk
            self.check_read_error = e
        finally:
            self.result.check_seconds += time.perf_counter() - t

    def written_before(self, chunk: list[date]) -> dict[str, set[date]]:
        """Per table, the dates earlier chunks of this run write: chunks are in date order, so
        they are the table's targets before this chunk's first date."""
        return {t: {d for d in days if d < chunk[0]} for t, days in self.per_table.items()}

    def check(self, chunk: list[date]) -> int:
        """This chunk's defensive checks, from the stage's one read; returns the checks made."""
        if self.check_read_error is not None:
            e = self.check_read_error
            raise _ChecksCouldNotRun(f"defensive checks could not run: {type(e).__name__}: {e}") from e
        try:
            return check_chunk(self.schedule, self.procs, chunk, self.produced, self.check_inputs or CheckInputs(),
                               self.excused, self.params_file, waived=self.waived,
                               written_before=self.written_before(chunk))
        except DependencyError:
            raise
        except Exception as e:  # noqa: BLE001 - a check that cannot run is a failed chunk too
            raise _ChecksCouldNotRun(f"defensive checks could not run: {type(e).__name__}: {e}") from e

    def run(self, ctx: ChunkContext) -> ChunkWork:
        """Defensive checks, then each processor's change-only write in processor order, and
        the chunk's lineage. The runner records the history rows and commits."""
        wh, chunk, result = self.wh, ctx.dates, self.result
        todo = [(p, [d for d in chunk if d in self.per_table.get(p.table.fqn, ())]) for p in self.procs]
        todo = [(p, ds) for p, ds in todo if ds]
        if self.checks:
            t = time.perf_counter()
            try:
                result.checks_made += self.check(chunk)
            except DependencyError as e:
                ctx.at(e.processor, next((p.phase for p in PROCESSORS if p.name == e.processor), ctx.phase))
                raise
            finally:
                result.check_seconds += time.perf_counter() - t

        seconds: dict[str, float] = {}
        counts: dict[str, WriteCount] = {}
        stamp = lineage.now()
        for p, days in todo:
            ctx.at(p.name, p.phase)
            t = time.perf_counter()
            counts[p.table.fqn] = _write_processor(wh, p, days)
            seconds[p.name] = time.perf_counter() - t
        ctx.at("(run history)")
        with profiling.part("history"):  # the history rows' counts
            present = wh.query_file("derive/present_games", {"start_date": chunk[0], "end_date": chunk[-1]})
        per_date = present.assign(game_date=pd.to_datetime(present.game_date).dt.date) \
            .groupby(["table_name", "game_date"]).row_count.sum().to_dict()
        ctx.at("(lineage)")
        # a date counts as changed when its rows did (exact where the backend returns the changed
        # dates, as DuckDB does; elsewhere every date of a changed write: never misses a change)
        lineage.record_lineage(wh, [lineage.PartitionWrite(p.table.fqn, d, counts[p.table.fqn].changed_on(d))
                                    for p, days in todo for d in days],
                               self.windows, run_id=self.run_id, stage=STAGE, stamp=stamp)

        def committed() -> None:
            for p, days in todo:
                result.table_dates.setdefault(p.table.fqn, []).extend(days)
            for name, s in seconds.items():
                result.processor_seconds[name] = result.processor_seconds.get(name, 0.0) + s

        computed = [(p.table.fqn, d) for p, days in todo for d in days]
        return ChunkWork(
            history=[(p.name, p.phase, d, int(per_date.get((p.table.fqn, d), 0))) for p, days in todo for d in days],
            written=counts,
            # partitions recomputed that came out identical: what a restatement paid for nothing
            detail={"partitions": len(computed),
                    "partitions_unchanged": sum(not counts[t].changed_on(d) for t, d in computed)},
            on_commit=committed,
        )


def _write_processor(wh: Warehouse, p: Processor, days: list[date]) -> WriteCount:
    """Make the processor's table equal its SQL on ``days``, touching only rows that change."""
    params = {"start_date": days[0], "end_date": days[-1], "dates": list(days), **p.sql_parameters}
    return wh.write_changes(p.table.fqn, days[0], days[-1], sql=read_sql(p.sql_name), params=params,
                            where=f"{p.table.date_column} IN UNNEST(@dates)")


def waived_skip_dates(params: RunParams) -> list[date]:
    """Dates whose required sources are waived (the gate's waivers): derive skips them."""
    try:
        from ..gate import waived_dates
    except ImportError:  # the gate stage is optional
        return []
    return list(waived_dates(params))
