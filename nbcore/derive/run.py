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

from ..archive import RunArchive, new_run_id
from ..history import RunRecord, record_runs
from ..params import RunParams
from ..sqlfiles import read_sql
from ..warehouse import Warehouse, open_warehouse
from ..waivers import waived_by_table
from .checks import DependencyError, Schedule, run_checks
from .processors import PROCESSORS, Processor, selected_processors
from .result import ChunkRecord, DeriveResult

STAGE = "derive"
log = logging.getLogger(__name__)


def _announce(result: DeriveResult, message: str, progress: bool) -> None:
    """A bypass is always recorded in the result (and the stage record); shown when interactive."""
    result.bypasses.append(message)
    log.info(message)
    if progress:
        print(f"WARNING: {message}")


def make_chunks(targets: list[date], chunk_days: int) -> list[list[date]]:
    """Group target dates into chunks: each holds the targets within ``chunk_days`` calendar
    days of its first date (``chunk_days: 1`` = one date per chunk)."""
    chunks: list[list[date]] = []
    for d in sorted(set(targets)):
        if chunks and (d - chunks[-1][0]).days < chunk_days:
            chunks[-1].append(d)
        else:
            chunks.append([d])
    return chunks


def scope_dates(params: RunParams, schedule: Schedule) -> list[date]:
    """Completed game dates inside the run's seasons and date window."""
    lo, hi = params.date_bounds()
    seasons = set(params.season_list)
    return [d for d in schedule.dates if lo <= d <= hi and schedule.season_of[d] in seasons]


def missing_dates(wh: Warehouse, params: RunParams, schedule: Schedule, procs: list[Processor],
                  scope: list[date]) -> list[date]:
    """Dates on which any selected phase 3/4 table lacks a game the schedule says was played.

    Uses ``nbcore.validate.run_validate`` when it is available (the same answer validate
    reports); otherwise counts games per table with ``derive/present_games.sql``.
    """
    if not scope:
        return []
    scope_set = set(scope)
    try:
        from ..validate import run_validate  # noqa: WPS433 (optional: the validate stage)
    except ImportError:
        run_validate = None
    if run_validate is not None:
        v = run_validate(params, wh=wh, progress=False)
        out: set[date] = set()
        for p in procs:
            out |= set(v.missing_dates(p.table.fqn)) | set(v.partial_dates(p.table.fqn))
        return sorted(out & scope_set)
    present = wh.query_file("derive/present_games", {"start_date": min(scope), "end_date": max(scope)})
    present["game_date"] = pd.to_datetime(present["game_date"]).dt.date
    have = {t: set(zip(g.game_date, g.game_id)) for t, g in present.groupby("table_name")}
    out = set()
    for p in procs:
        got = have.get(p.table.fqn, set())
        for d in scope:
            if any((d, g) not in got for g in schedule.game_ids_by_date.get(d, ())):
                out.add(d)
    return sorted(out)


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
) -> DeriveResult:
    """Derive phases 3 and 4 for the run's dates; stop at the first failing chunk.

    ``dates``: explicit game dates to derive (default: every date inside the run's seasons and
    window on which a phase 3/4 table is missing a game). ``skip_dates``: waived dates, never
    derived, reported as skipped, and not treated as gaps by the defensive checks (pass
    ``waived_skip_dates(params)`` for the run's waivers). With an archive the result goes to
    ``stages/derive.json``. ``params_file`` only names the file in the fix commands of errors.
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
        if dates is not None:
            final = set(schedule.dates)
            targets = sorted({pd.Timestamp(d).date() for d in dates} & final)
        else:
            targets = missing_dates(wh, params, schedule, procs, scope_dates(params, schedule))
        skip = {pd.Timestamp(d).date() for d in (skip_dates or ())}
        result.skipped_dates = sorted(skip & set(targets))
        result.requested_dates = [d for d in targets if d not in skip]
        chunks = make_chunks(result.requested_dates, params.chunk_days)
        attempts = _existing_attempts(wh, run_id)
        produced = {p.table.fqn for p in procs}
        waived = waived_by_table(params, wh) if checks else {}  # a raw source's own waived dates are no gap

        bar = tqdm(chunks, desc="derive", unit="chunk", disable=not progress or not chunks)
        for i, chunk in enumerate(bar):
            bar.set_postfix_str(f"{chunk[0]}..{chunk[-1]}")
            ok = _run_chunk(wh, schedule, procs, chunk, produced, checks, run_id, attempts, result, frozenset(skip),
                            params_file, waived)
            if not ok:
                for later in chunks[i + 1:]:
                    result.chunks.append(ChunkRecord(later[0], later[-1], later, "not_run"))
                    result.not_run_dates.extend(later)
                break
        bar.close()
        result.seconds = time.perf_counter() - t_run
        if archive is not None:
            archive.record_stage(STAGE, result.summary())
        return result
    finally:
        if own:
            wh.close()


def _run_chunk(wh: Warehouse, schedule: Schedule, procs: list[Processor], chunk: list[date],
               produced: set[str], checks: bool, run_id: str, attempts: dict, result: DeriveResult,
               excused: frozenset[date] = frozenset(), params_file: Optional[str] = None,
               waived: Optional[dict] = None) -> bool:
    first, last = chunk[0], chunk[-1]
    t_chunk = time.perf_counter()
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
    rows: dict[str, int] = {}
    current = procs[0].name if procs else ""
    started = datetime.now(timezone.utc)
    try:
        with wh.transaction():
            for p in procs:
                current = p.name
                t = time.perf_counter()
                rows[p.table.fqn] = wh.replace_range(
                    p.table.fqn, first, last, sql=read_sql(p.sql_name),
                    params={"start_date": first, "end_date": last, "dates": list(chunk)},
                    where=f"{p.table.date_column} IN UNNEST(@dates)",
                )
                seconds[p.name] = time.perf_counter() - t
            current = "(run history)"
            counts = wh.query_file("derive/present_games", {"start_date": first, "end_date": last})
            per_date = counts.assign(game_date=pd.to_datetime(counts.game_date).dt.date) \
                .groupby(["table_name", "game_date"]).row_count.sum().to_dict()
            finished = datetime.now(timezone.utc)
            records = []
            for p in procs:
                for d in chunk:
                    records.append(RunRecord(
                        run_id=run_id, stage=STAGE, phase=p.phase, processor=p.name, data_date=d, success=True,
                        rows_written=int(per_date.get((p.table.fqn, d), 0)),
                        attempt=attempts.get((p.name, d), 0) + 1, started_at=started, finished_at=finished,
                        seconds=seconds[p.name] / len(chunk),
                    ))
            record_runs(wh, records)
    except Exception as e:  # noqa: BLE001 - any failure stops the run; the chunk rolled back
        msg = f"{type(e).__name__}: {e}"
        _fail(wh, result, chunk, current, msg, run_id, attempts, t_chunk)
        return False
    for (p, d) in ((p, d) for p in procs for d in chunk):
        attempts[(p.name, d)] = attempts.get((p.name, d), 0) + 1
    for name, s in seconds.items():
        result.processor_seconds[name] = result.processor_seconds.get(name, 0.0) + s
    for table, n in rows.items():
        result.rows_written[table] = result.rows_written.get(table, 0) + int(n)
    result.processed_dates.extend(chunk)
    result.chunks.append(ChunkRecord(first, last, list(chunk), "succeeded", time.perf_counter() - t_chunk))
    return True


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
