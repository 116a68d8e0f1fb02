"""Stage ``grade`` (phase 5B): grade predictions against the points actually scored, and measure
every system's accuracy.

Eligibility is explicit. A prediction is graded when its game is final (schedule) and the
game has box scores in ``player_game_summary``; a player with no row there did not play, so
his prediction is *voided* (written with ``is_voided``, never counted as a miss). Games not
final, or final but still missing analytics, are not graded yet. A PASS or a push is neither
right nor wrong (``was_correct`` NULL) and is counted apart.

Execution follows derive's rules: dates that need grading (an eligible prediction without a
current grade, or a grade left over from a prediction that no longer exists) are cut into
chunks of ``chunk_days``; each chunk's dates are replaced in one transaction by one set-based
statement (``nbcore/sql/grade/accuracy.sql``) with their ``processor_run_history`` rows, and
the first failing chunk stops the stage. Re-running changes nothing.

Metrics (``accuracy_metrics``): MAE, bias, RMSE, within 3 / 5 points, hit rate on OVER/UNDER
calls with its 95 % Wilson interval, and the counts behind them, per system / season / game
type (or any coarser grouping). ``grading_completeness`` is what validate reports for 5B.
"""
from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Sequence

import pandas as pd

from .archive import RunArchive, new_run_id
from . import lineage, program
from .record import GradeRecord
from .params import RunParams
from .sqlfiles import read_sql
from .stage_run import ChunkContext, ChunkedResult, ChunkedStageFailed, ChunkWork, run_chunks, stage_session
from .errors import RunInterrupted
from .warehouse import Warehouse, open_warehouse
from .warehouse.base import WriteCount

TABLE = "nba_predictions.prediction_accuracy"
PROCESSOR = "prediction_accuracy"
STAGE = "grade"
PHASE = "5B"
DEFAULT_GROUPING = ("system_id", "season_year", "game_type")
_SUMS = ["n_rows", "graded", "voided", "sum_abs_error", "sum_signed_error", "sum_sq_error", "within_3", "within_5",
         "calls", "over_calls", "under_calls", "correct", "wrong", "over_correct", "over_wrong", "under_correct",
         "under_wrong", "pushes", "passes", "no_line"]


class GradeError(ChunkedStageFailed):
    """A grade chunk failed; the stage stopped there. ``result`` holds what was done before it."""

    def __init__(self, message: str, result: "GradeResult"):
        super().__init__(message, result, STAGE)


@dataclass(repr=False)
class GradeResult(ChunkedResult):
    """What the grade stage did, and the accuracy it measured afterwards."""

    regrade: bool = False
    not_eligible: dict[str, int] = field(default_factory=dict)
    sums: pd.DataFrame = field(default_factory=pd.DataFrame)  # additive accuracy sums (see accuracy_sums)
    completeness: pd.DataFrame = field(default_factory=pd.DataFrame)

    def metrics(self, by: Sequence[str] = DEFAULT_GROUPING) -> pd.DataFrame:
        """Accuracy metrics for the scope after grading, grouped by ``by``."""
        if self.sums.empty:
            return pd.DataFrame()
        return accuracy_rollup(self.sums, by)

    def _total(self, key: str) -> int:
        return int(sum(c.detail.get(key, 0) for c in self.chunks))

    def record(self) -> GradeRecord:
        """The typed stage record (``nbcore.record``)."""
        return GradeRecord.model_validate({**self.summary_fields(), "chunks": self.chunks})

    def summary(self) -> dict:
        """The stage record as JSON (``stages/grade.json``)."""
        return self.record().to_json()

    def summary_fields(self) -> dict:
        """The record's fields (the typed record validates them)."""
        by_system = {}
        if not self.sums.empty:
            for r in self.metrics(["system_id"]).itertuples(index=False):
                by_system[r.system_id] = {
                    "graded": int(r.graded), "voided": int(r.voided), "mae": _r(r.mae), "bias": _r(r.bias),
                    "hit_rate": _r(r.hit_rate), "hit_rate_ci": [_r(r.hit_rate_low), _r(r.hit_rate_high)],
                    "calls": int(r.calls), "passes": int(r.passes), "pushes": int(r.pushes), "no_line": int(r.no_line),
                }
        comp = {}
        if not self.completeness.empty:
            comp = {str(int(r.season_year)): _r(r.completeness_pct, 2) for r in self.completeness.itertuples(index=False)}
        return {
            "status": self.status,
            "run_id": self.run_id,
            "reason": self.reason,
            "regrade": self.regrade,
            "dates": len(self.dates),
            "first_date": self.dates[0] if self.dates else None,
            "last_date": self.dates[-1] if self.dates else None,
            "rows_written": {TABLE: int(self.rows_written.get(TABLE, 0))},
            "rows_deleted": {TABLE: int(self.rows_deleted.get(TABLE, 0))},
            "graded": self._total("graded"),
            "voided": self._total("voided"),
            "not_eligible": dict(self.not_eligible),
            "completeness_pct": comp,
            "metrics_by_system": by_system,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "failed_chunk": self.failed_chunk,
        }

    def chunk_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"start": c.first, "end": c.last, "dates": len(c.dates), "rows": c.rows,
                              "graded": c.detail.get("graded", 0), "voided": c.detail.get("voided", 0),
                              "seconds": c.seconds} for c in self.chunks if c.status == "succeeded"],
                            columns=["start", "end", "dates", "rows", "graded", "voided", "seconds"])

    def __repr__(self) -> str:
        span = f"{self.dates[0]}..{self.dates[-1]}" if self.dates else "-"
        return (f"<GradeResult grade {self.status}: {len(self.dates)} dates ({span}), {len(self.chunks)} chunks, "
                f"graded {self._total('graded')}, voided {self._total('voided')}, {self.seconds:.2f} s>")

    def _repr_html_(self) -> str:
        s = self.summary()
        head = (f"<b>grade</b> {html.escape(s['status'])}: {s['dates']} dates "
                f"({s['first_date'] or '-'} → {s['last_date'] or '-'}), {len(s['chunks'])} chunks, "
                f"{s['graded']} graded, {s['voided']} voided (player did not play), "
                f"not eligible: {html.escape(str(s['not_eligible']))}, {s['seconds']} s")
        if self.error:
            head += f"<br><b style='color:#b00'>error:</b> {html.escape(self.error)}"
        return head + self.chunk_table().to_html(index=False)


def _r(v, digits: int = 4):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), digits)



def _dates(col: pd.Series) -> pd.Series:
    """A DATE column as python dates (object dtype), also when empty."""
    return pd.to_datetime(col).dt.date.astype(object)


def _scope(params: RunParams) -> dict:
    start, end = params.date_bounds()
    return {"start_date": start, "end_date": end, "seasons": params.season_list}


# -- the stage -------------------------------------------------------------------------

def run_grade(
    params: RunParams,
    wh: Warehouse | None = None,
    archive: RunArchive | None = None,
    progress: bool = True,
    dates: Sequence[date] | None = None,
    metrics: bool = True,
) -> GradeResult:
    """Grade every date in scope that needs it, chunk by chunk; stop at the first error.

    Scope: ``params.seasons``, ``start_date``/``end_date`` and, when given, ``dates``. Afterwards
    (``metrics=True``) the result carries accuracy metrics and grading completeness for the scope.
    Raises ``GradeError`` (with the partial result) when a chunk fails. Run by hand (no
    archive), the stage takes the warehouse lock and records itself in an archive of its own.
    """
    with stage_session(params, STAGE, archive) as archive:
        return _run_grade(params, wh, archive, progress, dates, metrics)


def _run_grade(params: RunParams, wh: Warehouse | None, archive: RunArchive | None, progress: bool,
               dates: Sequence[date] | None, metrics: bool) -> GradeResult:
    t0 = time.perf_counter()
    own = wh is None
    wh = wh or open_warehouse(params)
    run_id = archive.run_id if archive else new_run_id(params.run_name, "grade")
    result = GradeResult(run_id=run_id, regrade=params.regrade)
    try:
        if not params.table_selected(PROCESSOR):  # ``tables`` limits the run to other tables
            result.status = "skipped"
            return result
        # the plan's chunks (plan.json inside a run; a one-stage plan by hand): never targets of its own
        prog = program.for_stage(wh, params, STAGE, archive, dates)
        chunks = prog.remaining
        result.dates = sorted(d for c in chunks for d in c)

        def body(ctx: ChunkContext) -> ChunkWork:
            written, counts = _grade_chunk(wh, ctx.dates, run_id)
            per_date = counts.set_index("game_date").n_rows
            return ChunkWork(history=[(PROCESSOR, PHASE, d, int(per_date.get(d, 0))) for d in ctx.dates],
                             written={TABLE: written},
                             detail={"graded": int(counts.graded.sum()), "voided": int(counts.voided.sum())})

        failure = run_chunks(wh, stage=STAGE, run_id=run_id, chunks=chunks, body=body, record=result,
                             processor=PROCESSOR, phase=PHASE, progress=progress,
                             on_outcome=program.outcome_recorder(archive, STAGE))
        if failure is not None:
            result.stopped(STAGE, PROCESSOR, failure)
        if metrics and failure is None and result.status != "interrupted":
            result.sums = accuracy_sums(wh, params)
            result.completeness = grading_completeness(wh, params)
            comp = result.completeness
            result.not_eligible = {"not_final": int(comp.not_final.sum()) if len(comp) else 0,
                                   "awaiting_analytics": int(comp.awaiting_analytics.sum()) if len(comp) else 0}
    finally:
        result.seconds = time.perf_counter() - t0
        if archive is not None:
            archive.record_stage(STAGE, result.summary())
        if own:
            wh.close()
    if result.status == "interrupted":  # a signal to the driver: stopped at a chunk boundary
        raise RunInterrupted(result.reason)
    if result.status == "failed":
        raise GradeError(result.error or "grade failed", result)
    return result


def _grade_chunk(wh: Warehouse, chunk: list[date], run_id: str) -> tuple[WriteCount, pd.DataFrame]:
    """Make the chunk's grades equal ``grade/accuracy.sql`` (change-only) and record their
    lineage, inside the chunk's transaction; the write counts and the per-date counts."""
    p = {"dates": list(chunk)}
    stamp = lineage.now()
    written = wh.write_changes(TABLE, chunk[0], chunk[-1], sql=read_sql("grade/accuracy"), params=p,
                               where="game_date IN UNNEST(@dates)")
    # the counts read first: on BigQuery the write (deferred) rides in the same job as this read
    counts = wh.query_file("grade/chunk_counts", p)
    lineage.record_lineage(wh, [lineage.PartitionWrite(TABLE, d, written.changed) for d in chunk],
                           lineage.Windows({}), run_id=run_id, stage=STAGE, stamp=stamp)
    counts["game_date"] = _dates(counts["game_date"])
    return written, counts


# -- completeness ------------------------------------------------------------------------

def grading_completeness(wh: Warehouse, params: RunParams) -> pd.DataFrame:
    """Per season: predictions, not final, awaiting analytics, voided, eligible, graded and
    ``completeness_pct`` = graded / eligible (100 when nothing is eligible)."""
    frame = wh.query_file("grade/completeness", _scope(params))
    for c in frame.columns:
        frame[c] = frame[c].astype(int)
    frame["ungraded"] = frame.eligible - frame.graded
    frame["completeness_pct"] = [
        100.0 * g / e if e else 100.0 for g, e in zip(frame.graded, frame.eligible)
    ]
    return frame


# -- metrics -----------------------------------------------------------------------------

def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (NaN, NaN when n = 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_sums(wh: Warehouse, params: RunParams) -> pd.DataFrame:
    """Additive sums per system / season / game type (``nbcore/sql/grade/metrics.sql``)."""
    frame = wh.query_file("grade/metrics", _scope(params))
    for c in _SUMS:
        frame[c] = pd.to_numeric(frame[c]).fillna(0)
    return frame


def accuracy_rollup(sums: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Metrics from additive sums, grouped by ``by`` (any subset of system/season/game type)."""
    g = sums.groupby(list(by), as_index=False)[_SUMS].sum() if by else sums[_SUMS].sum().to_frame().T
    out = g.copy()
    graded = out.graded.where(out.graded > 0)
    out["mae"] = out.sum_abs_error / graded
    out["bias"] = out.sum_signed_error / graded
    out["rmse"] = (out.sum_sq_error / graded) ** 0.5
    out["within_3_pct"] = 100 * out.within_3 / graded
    out["within_5_pct"] = 100 * out.within_5 / graded
    decided = out.correct + out.wrong
    out["hit_rate"] = out.correct / decided.where(decided > 0)
    ci = [wilson_interval(int(k), int(n)) for k, n in zip(out.correct, decided)]
    out["hit_rate_low"] = [c[0] for c in ci]
    out["hit_rate_high"] = [c[1] for c in ci]
    od, ud = out.over_correct + out.over_wrong, out.under_correct + out.under_wrong
    out["over_hit_rate"] = out.over_correct / od.where(od > 0)
    out["under_hit_rate"] = out.under_correct / ud.where(ud > 0)
    cols = list(by) + ["graded", "voided", "mae", "bias", "rmse", "within_3_pct", "within_5_pct", "calls",
                       "correct", "wrong", "hit_rate", "hit_rate_low", "hit_rate_high", "over_calls",
                       "over_hit_rate", "under_calls", "under_hit_rate", "pushes", "passes", "no_line"]
    for c in ("graded", "voided", "calls", "correct", "wrong", "over_calls", "under_calls", "pushes", "passes", "no_line"):
        out[c] = out[c].astype(int)
    return out[cols].reset_index(drop=True)


def accuracy_metrics(wh: Warehouse, params: RunParams, by: Sequence[str] = DEFAULT_GROUPING) -> pd.DataFrame:
    """MAE, bias, RMSE, within 3/5, hit rate with 95 % interval and counts, grouped by ``by``."""
    sums = accuracy_sums(wh, params)
    if sums.empty:
        return pd.DataFrame(columns=list(by) + ["graded", "voided", "mae", "bias", "hit_rate"])
    return accuracy_rollup(sums, by)


def graded_rows(wh: Warehouse | None, params: RunParams) -> pd.DataFrame:
    """Graded (not voided) rows, the input of the charts in ``nbcore.grade_charts``
    (``wh=None``: open the params' warehouse for the read)."""
    if wh is None:
        with open_warehouse(params) as own:
            return graded_rows(own, params)
    frame = wh.query_file("grade/graded_rows", _scope(params))
    frame["game_date"] = pd.to_datetime(frame["game_date"])
    return frame
