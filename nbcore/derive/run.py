"""``run_derive``: phase 3 then phase 4 over a set of game dates, chunk by chunk.

A chunk is the requested game dates that fall within ``chunk_days`` calendar days of its first
date; ``chunk_days: 1`` is the platform's date-by-date behaviour, larger chunks are the fast path
(each processor is one set-based statement per chunk). A chunk replaces exactly its own dates:
a date inside its span that was not requested (already complete, waived) is neither deleted nor
written (the SQL's ``@dates`` and ``replace_range``'s ``where`` both name the chunk's dates).
For each chunk, in order:

1. defensive checks (unless ``backfill_mode`` or ``strict_mode: false``, both announced);
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
from datetime import date, datetime, timezone
from typing import Iterable, Optional

import pandas as pd
from ..progress import tqdm

from .. import lineage
from ..chunks import make_chunks
from ..archive import RunArchive, new_run_id
from ..errors import StageFailed
from ..history import RunRecord, record_runs
from ..params import RunParams
from ..sqlfiles import read_sql
from ..warehouse import Warehouse, open_warehouse
from ..warehouse.base import WriteCount
from ..waivers import waived_by_table
from .checks import DependencyError, Schedule, run_checks
from .processors import PROCESSORS, Processor, selected_processors
from .result import ChunkRecord, DeriveResult

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


def derive_targets(wh: Warehouse, params: RunParams, schedule: Schedule, procs: list[Processor],
                   scope: list[date], upstream_seeds: Optional[dict] = None) -> lineage.Targets:
    """What derive must rebuild, per processor: missing ∪ stale, closed over the graph.

    Missing (and partial) dates come from validate, stale partitions from recorded lineage
    (``lineage.stale_partitions``); then every partition whose window holds a date rebuilt
    upstream joins, in processor order, so one run restates the whole closure.
    ``upstream_seeds``: raw dates a load before this derive will fill (the plan's view).
    """
    if not scope:
        return lineage.Targets()
    scope_set = set(scope)
    seeds: dict[str, dict[date, lineage.Cause]] = {t: dict(c) for t, c in (upstream_seeds or {}).items()}
    missing = _missing_by_table(wh, params, schedule, procs, scope)
    for table, days in missing.items():
        seeds.setdefault(table, {}).update({d: lineage.Cause("missing") for d in days})
    stale = lineage.stale_partitions(wh, [p.table.fqn for p in procs], min(scope), max(scope))
    for table, causes in lineage.stale_seeds(stale).items():
        for d, c in causes.items():
            if d in scope_set:
                seeds.setdefault(table, {}).setdefault(d, c)
    produced = [p.table.fqn for p in procs]
    targets = lineage.closure(seeds, {t: scope for t in produced}, windows_for(schedule), tables=produced)
    return lineage.Targets({t: {d: c for d, c in targets.of(t).items() if d in scope_set} for t in produced})


def scope_dates(params: RunParams, schedule: Schedule) -> list[date]:
    """Completed game dates inside the run's seasons and date window."""
    lo, hi = params.date_bounds()
    seasons = set(params.season_list)
    return [d for d in schedule.dates if lo <= d <= hi and schedule.season_of[d] in seasons]


def missing_dates(wh: Warehouse, params: RunParams, schedule: Schedule, procs: list[Processor],
                  scope: list[date]) -> list[date]:
    """Dates on which any selected phase 3/4 table lacks a game the schedule says was played."""
    return sorted(set().union(*_missing_by_table(wh, params, schedule, procs, scope).values()))


def _missing_by_table(wh: Warehouse, params: RunParams, schedule: Schedule, procs: list[Processor],
                      scope: list[date]) -> dict[str, set[date]]:
    """Per selected table, the scope dates on which it lacks a game the schedule says was played
    (counted per game with ``derive/present_games.sql``: a partly derived date is missing)."""
    if not scope:
        return {p.table.fqn: set() for p in procs}
    present = wh.query_file("derive/present_games", {"start_date": min(scope), "end_date": max(scope)})
    present["game_date"] = pd.to_datetime(present["game_date"]).dt.date
    have = {t: set(zip(g.game_date, g.game_id)) for t, g in present.groupby("table_name")}
    out: dict[str, set[date]] = {}
    for p in procs:
        got = have.get(p.table.fqn, set())
        out[p.table.fqn] = {d for d in scope
                            if any((d, g) not in got for g in schedule.game_ids_by_date.get(d, ()))}
    return out


def _existing_attempts(wh: Warehouse, run_id: str) -> dict[tuple[str, date], int]:
    df = wh.query_file("derive/run_attempts", {"run_id": run_id})
    return {(r.processor, pd.Timestamp(r.data_date).date()): int(r.attempts) for r in df.itertuples()}


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

    Each processor rebuilds its own targets (missing ∪ stale, see ``derive_targets``) and writes
    only rows whose value changed (``Warehouse.write_changes``), recording lineage. A failing
    chunk is recorded, then ``DeriveFailed`` is raised (``raise_on_failure=False`` returns the
    failed result instead, for callers that render it).
    """
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
        if dates is not None:
            final = set(schedule.dates)
            explicit = sorted({pd.Timestamp(d).date() for d in dates} & final)
            targets = lineage.Targets({p.table.fqn: {d: lineage.Cause("requested") for d in explicit} for p in procs})
        else:
            targets = derive_targets(wh, params, schedule, procs, scope_dates(params, schedule))
        union = sorted(set().union(*(targets.of(p.table.fqn).keys() for p in procs))) if procs else []
        result.skipped_dates = sorted(skip & set(union))
        result.requested_dates = [d for d in union if d not in skip]
        result.stale_dates = {p.table.fqn: [d.isoformat() for d in targets.stale(p.table.fqn) if d not in skip]
                              for p in procs if targets.stale(p.table.fqn)}
        per_table = {p.table.fqn: set(targets.of(p.table.fqn)) - skip for p in procs}
        chunks = make_chunks(result.requested_dates, params.chunk_days)
        attempts = _existing_attempts(wh, run_id)
        produced = {p.table.fqn for p in procs}
        windows = windows_for(schedule)
        waived = waived_by_table(params, wh) if checks else {}  # a raw source's own waived dates are no gap

        bar = tqdm(chunks, desc="derive", unit="chunk", disable=not progress or not chunks)
        for i, chunk in enumerate(bar):
            bar.set_postfix_str(f"{chunk[0]}..{chunk[-1]}")
            ok = _run_chunk(wh, schedule, procs, chunk, produced, checks, run_id, attempts, result, frozenset(skip),
                            params_file, per_table, windows, waived)
            if not ok:
                for later in chunks[i + 1:]:
                    result.chunks.append(ChunkRecord(later[0], later[-1], later, "not_run"))
                    result.not_run_dates.extend(later)
                break
        bar.close()
        result.seconds = time.perf_counter() - t_run
        if archive is not None:
            archive.record_stage(STAGE, result.summary())
        if not result.ok and raise_on_failure:
            raise DeriveFailed(result)
        return result
    finally:
        if own:
            wh.close()


def _run_chunk(wh: Warehouse, schedule: Schedule, procs: list[Processor], chunk: list[date],
               produced: set[str], checks: bool, run_id: str, attempts: dict, result: DeriveResult,
               excused: frozenset[date] = frozenset(), params_file: Optional[str] = None,
               per_table: Optional[dict[str, set[date]]] = None,
               windows: Optional[lineage.WindowFn] = None, waived: Optional[dict] = None) -> bool:
    first, last = chunk[0], chunk[-1]
    t_chunk = time.perf_counter()
    todo = [(p, [d for d in chunk if per_table is None or d in per_table.get(p.table.fqn, ())]) for p in procs]
    todo = [(p, ds) for p, ds in todo if ds]
    if checks:
        t = time.perf_counter()
        try:
            result.checks_made += run_checks(wh, schedule, procs, chunk, produced, excused, params_file,
                                              waived=waived)
        except DependencyError as e:
            result.check_seconds += time.perf_counter() - t
            _fail(wh, result, chunk, e.processor, str(e), run_id, attempts, t_chunk, dependency=e.to_dict())
            return False
        except Exception as e:  # noqa: BLE001 - a check that cannot run is a failed chunk too
            result.check_seconds += time.perf_counter() - t
            _fail(wh, result, chunk, procs[0].name, f"defensive checks could not run: {type(e).__name__}: {e}",
                  run_id, attempts, t_chunk)
            return False
        result.check_seconds += time.perf_counter() - t

    seconds: dict[str, float] = {}
    counts: dict[str, WriteCount] = {}
    current = procs[0].name if procs else ""
    started = datetime.now(timezone.utc)
    stamp = lineage.now()
    try:
        with wh.transaction():
            for p, days in todo:
                current = p.name
                t = time.perf_counter()
                counts[p.table.fqn] = _write_processor(wh, p, days)
                seconds[p.name] = time.perf_counter() - t
            current = "(run history)"
            present = wh.query_file("derive/present_games", {"start_date": first, "end_date": last})
            per_date = present.assign(game_date=pd.to_datetime(present.game_date).dt.date) \
                .groupby(["table_name", "game_date"]).row_count.sum().to_dict()
            finished = datetime.now(timezone.utc)
            records = []
            for p, days in todo:
                for d in days:
                    records.append(RunRecord(
                        run_id=run_id, stage=STAGE, phase=p.phase, processor=p.name, data_date=d, success=True,
                        rows_written=int(per_date.get((p.table.fqn, d), 0)),
                        attempt=attempts.get((p.name, d), 0) + 1, started_at=started, finished_at=finished,
                        seconds=seconds[p.name] / len(days),
                    ))
            record_runs(wh, records)
            current = "(lineage)"
            # the dates of one write share its change flag: if any row of it changed, each of its
            # dates counts as changed (exact with chunk_days: 1; never misses a change)
            writes = [lineage.PartitionWrite(p.table.fqn, d, counts[p.table.fqn].changed) for p, days in todo
                      for d in days]
            lineage.record_lineage(wh, writes, windows or lineage.Windows.from_dates(schedule.season_of),
                                   run_id=run_id, stage=STAGE, stamp=stamp)
    except Exception as e:  # noqa: BLE001 - any failure stops the run; the chunk rolled back
        msg = f"{type(e).__name__}: {e}"
        _fail(wh, result, chunk, current, msg, run_id, attempts, t_chunk)
        return False
    for p, days in todo:
        result.table_dates.setdefault(p.table.fqn, []).extend(days)
        for d in days:
            attempts[(p.name, d)] = attempts.get((p.name, d), 0) + 1
    for name, s in seconds.items():
        result.processor_seconds[name] = result.processor_seconds.get(name, 0.0) + s
    for table, n in counts.items():
        result.rows_written[table] = result.rows_written.get(table, 0) + n.inserted
        result.rows_deleted[table] = result.rows_deleted.get(table, 0) + n.deleted
    result.processed_dates.extend(chunk)
    result.chunks.append(ChunkRecord(first, last, list(chunk), "succeeded", time.perf_counter() - t_chunk))
    return True


def _write_processor(wh: Warehouse, p: Processor, days: list[date]) -> WriteCount:
    """Make the processor's table equal its SQL on ``days``, touching only rows that change."""
    params = {"start_date": days[0], "end_date": days[-1], "dates": list(days), **p.sql_parameters}
    return wh.write_changes(p.table.fqn, days[0], days[-1], sql=read_sql(p.sql_name), params=params,
                            where=f"{p.table.date_column} IN UNNEST(@dates)")


def _fail(wh: Warehouse, result: DeriveResult, chunk: list[date], processor: str, message: str, run_id: str,
          attempts: dict, t_chunk: float, dependency: dict | None = None) -> None:
    """Record a failed chunk: the result, and one failed history row per date for the processor."""
    first, last = chunk[0], chunk[-1]
    result.status = "failed"
    result.failed_date = first
    result.failed_chunk = (first, last)
    result.failed_processor = processor
    result.error = message
    result.dependency = dependency
    result.chunks.append(ChunkRecord(first, last, list(chunk), "failed", time.perf_counter() - t_chunk, message))
    phase = next((p.phase for p in PROCESSORS if p.name == processor), "")
    try:
        record_runs(wh, [
            RunRecord(run_id=run_id, stage=STAGE, phase=phase, processor=processor, data_date=d, success=False,
                      error=message[:2000], attempt=attempts.get((processor, d), 0) + 1)
            for d in chunk
        ])
        for d in chunk:
            attempts[(processor, d)] = attempts.get((processor, d), 0) + 1
    except Exception as e:  # noqa: BLE001 - the original failure is what matters
        result.error += f" (and recording the failure in processor_run_history failed: {e})"



def waived_skip_dates(params: RunParams) -> list[date]:
    """Dates whose required sources are waived (the gate's waivers): derive skips them."""
    try:
        from ..gate import waived_dates
    except ImportError:  # the gate stage is optional
        return []
    return list(waived_dates(params))
