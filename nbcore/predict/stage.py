"""Stage ``predict`` (phase 5): points predictions from several systems for every player-game
that has a feature row and no prediction yet (or every player-game in scope with ``repredict``).

Execution follows derive's rules: the dates to do are cut into chunks of ``chunk_days``
calendar days; each chunk is computed, then written in one transaction (the chunk's rows of
``nba_predictions.player_prop_predictions`` are replaced and one ``processor_run_history``
row per date is appended), and the first failing chunk stops the stage: nothing after it
runs, and the error names the dates. The stage's inputs are read once, for all its dates,
before the first chunk (``inputs.PredictInputs``, the walk-forward training rows, the current
predictions): a chunk reads nothing, so on BigQuery its transaction is one script (plus a
staging load when its rows are many). Re-running changes nothing: without ``repredict`` there
is nothing left to do, and with it every value is recomputed from the same inputs (the
walk-forward models depend only on the date predicted, never on the chunking).
"""
from __future__ import annotations

import html
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd

from .. import lineage, program, walkforward
from ..chunks import make_chunks
from ..archive import RunArchive, new_run_id
from ..record import PredictRecord
from ..stage_run import ChunkContext, ChunkedResult, ChunkedStageFailed, ChunkWork, run_chunks, stage_session
from ..errors import RunInterrupted
from ..params import RunParams
from ..warehouse import Warehouse, open_warehouse
from ..warehouse.base import WriteCount
from . import baseline, blas, ensemble, matchup, model_cache, regression
from .calls import make_calls
from .changes import CurrentRows, write_changes
from .inputs import PredictInputs, days64, game_dates

TABLE = "nba_predictions.player_prop_predictions"
PROCESSOR = "player_prop_predictions"
STAGE = "predict"
PHASE = "5"
SYSTEMS = (baseline, matchup, regression, ensemble)
SYSTEM_IDS = [m.SYSTEM_ID for m in SYSTEMS]
SYSTEM_VERSIONS = {m.SYSTEM_ID: m.VERSION for m in SYSTEMS}
KEY = ["game_id", "player_lookup"]
OUTPUT_COLUMNS = [
    "game_id", "game_date", "season_year", "game_type", "player_lookup", "team_abbr", "system_id",
    "system_version", "predicted_points", "points_line", "edge", "recommendation", "confidence",
    "feature_version", "training_window_start", "training_window_end", "run_id", "created_at",
]


class PredictError(ChunkedStageFailed):
    """A predict chunk failed; the stage stopped there. ``result`` holds what was done before it."""

    def __init__(self, message: str, result: "PredictResult"):
        super().__init__(message, result, STAGE)


@dataclass(repr=False)
class PredictResult(ChunkedResult):
    """What the predict stage did: chunks written, models fitted, rows per system."""

    repredict: bool = False
    models: list[dict] = field(default_factory=list)
    rows_by_system: dict[str, int] = field(default_factory=dict)
    stale_dates: list[date] = field(default_factory=list)  # restated: inputs changed since predicted
    frozen_stale_dates: list[date] = field(default_factory=list)  # stale but kept (freeze_predictions)

    @property
    def rows(self) -> int:
        """Prediction rows inserted (new or changed)."""
        return int(self.rows_written.get(TABLE, 0))

    @property
    def player_games(self) -> int:
        return sum(c.detail.get("player_games", 0) for c in self.chunks)

    def record(self) -> PredictRecord:
        """The typed stage record (``nbcore.record``)."""
        return PredictRecord(
            status=self.status, run_id=self.run_id, reason=self.reason, repredict=self.repredict,
            dates=len(self.dates), first_date=self.dates[0] if self.dates else None,
            last_date=self.dates[-1] if self.dates else None, chunks=self.chunks, player_games=self.player_games,
            rows_written={TABLE: self.rows}, rows_deleted={TABLE: int(self.rows_deleted.get(TABLE, 0))},
            rows_by_system=dict(self.rows_by_system), stale_dates=self.stale_dates,
            frozen_stale_dates=self.frozen_stale_dates, models_fitted=sum(1 for m in self.models if m["fitted"]),
            seconds=round(self.seconds, 3), error=self.error, failed_chunk=self.failed_chunk,
        )

    def summary(self) -> dict:
        """The stage record as JSON (``stages/predict.json``)."""
        return self.record().to_json()

    def chunk_table(self) -> pd.DataFrame:
        cols = ["start", "end", "dates", "player_games", "rows", "seconds"]
        return pd.DataFrame([{"start": c.first, "end": c.last, "dates": len(c.dates),
                              "player_games": c.detail.get("player_games", 0), "rows": c.rows, "seconds": c.seconds}
                             for c in self.chunks if c.status == "succeeded"], columns=cols)

    def model_table(self) -> pd.DataFrame:
        """One row per walk-forward model fitted in this run (refit date, window, size, fit)."""
        frame = pd.DataFrame(self.models)
        if frame.empty:
            return frame
        keep = ["refit_date", "fitted", "n_train", "window_start", "window_end", "mae_train"]
        return frame[keep + [c for c in frame.columns if c.startswith("coef_")]].sort_values("refit_date")

    def __repr__(self) -> str:
        span = f"{self.dates[0]}..{self.dates[-1]}" if self.dates else "-"
        return (f"<PredictResult predict {self.status}: {len(self.dates)} dates ({span}), {len(self.chunks)} chunks, "
                f"player-games {self.player_games}, rows {self.rows}, {self.seconds:.2f} s>")

    def _repr_html_(self) -> str:
        s = self.record()
        head = (f"<b>predict</b> {html.escape(s.status)}: {s.dates} dates "
                f"({s.first_date or '-'} → {s.last_date or '-'}), {len(s.chunks)} chunks, "
                f"{s.player_games} player-games, {self.rows} rows, "
                f"{s.models_fitted} models fitted, {s.seconds} s")
        if self.error:
            head += f"<br><b style='color:#b00'>error:</b> {html.escape(self.error)}"
        return head + self.chunk_table().to_html(index=False)


chunk_dates = make_chunks  # one chunking for every stage (``nbcore.chunks``)


_dates = game_dates


def model_window_start(params: RunParams):
    """The first date the walk-forward model for a game date may learn from (lineage's window)."""
    return walkforward.model_window_start(params.refit_days, params.train_window_days)


def refit_days64(game_days: np.ndarray, refit_days: int) -> np.ndarray:
    """``walkforward.refit_date`` of every date (datetime64), as datetime64[D] (one numpy pass)."""
    days = np.asarray(game_days).astype("datetime64[D]")
    epoch = np.datetime64(walkforward.EPOCH, "D")
    offset = (days - epoch).astype(np.int64)
    return epoch + (offset // refit_days) * refit_days


def restates(params: RunParams) -> bool:
    """Whether this run recomputes every player-game of a date it predicts (and writes what changed),
    rather than only the player-games still missing a prediction (``freeze_predictions``)."""
    return params.repredict or not params.freeze_predictions


def read_inputs(wh: Warehouse, params: RunParams, dates: list[date]) -> PredictInputs:
    """The targets, baselines and (when restating) current predictions of ``dates``: one query each."""
    return PredictInputs.read(wh, dates, SYSTEM_IDS, restate=restates(params))


def predict_frame(
    wh: Warehouse, params: RunParams, dates: list[date], models: "WalkForwardModels", run_id: str,
    inputs: PredictInputs | None = None,
) -> pd.DataFrame:
    """Every system's prediction rows for the player-games to do on ``dates`` (nothing written).

    ``inputs``: the stage's inputs read beforehand for a span holding ``dates`` (then nothing is
    read here, the models' training rows aside when ``models`` was not loaded); read now if None."""
    inputs = inputs if inputs is not None else read_inputs(wh, params, dates)
    targets = inputs.targets_on(dates)
    if targets.empty:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)

    members: dict[str, pd.DataFrame] = {}
    for system in (baseline, matchup):
        out = targets[KEY].merge(inputs.baseline_on(system.SYSTEM_ID, dates), on=KEY, how="left",
                                 validate="one_to_one")
        if out["predicted_points"].isna().any():
            raise RuntimeError(f"{system.SYSTEM_ID}: no prediction for {int(out.predicted_points.isna().sum())} rows")
        members[system.SYSTEM_ID] = out[["predicted_points", "sigma"]].set_axis(targets.index)

    # each row's refit date, set-based (walkforward.refit_date on every row), and one model per refit date
    refits = refit_days64(inputs.target_days_on(dates), params.refit_days)
    refit_keys = np.unique(refits)
    by_day = {k: pd.Timestamp(k).date() for k in refit_keys}
    models.ensure(sorted(by_day.values()))
    X = regression.design(targets)
    n = len(targets)
    reg_pred, reg_sigma = np.empty(n), np.empty(n)
    win_start, win_end = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    base = members[baseline.SYSTEM_ID]
    base_pred, base_sigma = base["predicted_points"].to_numpy(dtype=float), base["sigma"].to_numpy(dtype=float)
    for key in refit_keys:  # the same rows, in the same order, as one model.predict per refit date
        model = models[by_day[key]]
        pos = np.flatnonzero(refits == key)
        reg_pred[pos], reg_sigma[pos] = model.predict_design(X[pos], base_pred[pos], base_sigma[pos])
        win_start[pos], win_end[pos] = model.window_start, model.window_end
    reg = pd.DataFrame({"predicted_points": reg_pred, "sigma": reg_sigma}, index=targets.index)
    windows = pd.DataFrame({"training_window_start": win_start, "training_window_end": win_end}, index=targets.index)
    members[regression.SYSTEM_ID] = reg
    members[ensemble.SYSTEM_ID] = ensemble.combine({k: members[k] for k in ensemble.WEIGHTS})

    now = pd.Timestamp(datetime.now(timezone.utc).replace(tzinfo=None))
    parts = []
    for system_id in SYSTEM_IDS:
        m = members[system_id]
        pred = m["predicted_points"].astype(float).round(2)
        calls = make_calls(pred, m["sigma"], targets["points_line"], params.edge_threshold)
        part = targets[["game_id", "game_date", "season_year", "game_type", "player_lookup", "team_abbr",
                        "points_line", "feature_version"]].copy()
        part["system_id"] = system_id
        part["system_version"] = SYSTEM_VERSIONS[system_id]
        part["predicted_points"] = pred
        part = part.join(calls)
        uses_model = system_id in (regression.SYSTEM_ID, ensemble.SYSTEM_ID)
        part["training_window_start"] = windows["training_window_start"] if uses_model else None
        part["training_window_end"] = windows["training_window_end"] if uses_model else None
        part["run_id"] = run_id
        part["created_at"] = now
        parts.append(part[OUTPUT_COLUMNS])
    return pd.concat(parts, ignore_index=True)


class WalkForwardModels:
    """The regression's models of one run, by refit date, and the training rows behind them.

    The stage loads the training rows of every model it will need with one query before its
    first chunk (``load``) and builds their design matrix once; a model is fitted when a chunk
    first needs it, on its window's slice of those rows (a slice of the matrix: ``design`` is row
    by row). Rows are kept sorted by (game_date, game_id, player_lookup), exactly as a read
    of just that window would be, so a model never depends on the span read with it, nor on the
    chunking. Asked for a model whose window the rows do not cover (``predict_frame`` used on
    its own), ``ensure`` reads that span first.
    """

    def __init__(self, wh: Warehouse, train_window_days: int):
        self.wh = wh
        self.train_window_days = train_window_days
        self.models: dict[date, regression.Model] = {}
        self.reused = 0  # models taken from ``model_cache`` (their window's rows had not changed)
        self._X: np.ndarray | None = None  # design matrix of the training rows
        self._y: np.ndarray | None = None  # their points (NaN: not usable)
        self._days: np.ndarray | None = None  # the rows' game_date as datetime64 (sorted)
        self._span: tuple[date, date] | None = None

    def __getitem__(self, refit: date) -> regression.Model:
        return self.models[refit]

    def span(self, refits: list[date]) -> tuple[date, date]:
        """The game dates the models of ``refits`` train on, all together."""
        return (regression.training_window(min(refits), self.train_window_days)[0],
                regression.training_window(max(refits), self.train_window_days)[1])

    def load(self, refits: list[date]) -> None:
        """Read the training rows of every model in ``refits`` (one query)."""
        if not refits:
            return
        lo, hi = self.span(refits)
        rows = self.wh.query_file("predict/training_rows", {"train_start": lo, "train_end": hi})
        rows["game_date"] = _dates(rows["game_date"])
        rows = rows.sort_values(["game_date", "game_id", "player_lookup"], kind="mergesort").reset_index(drop=True)
        self._X = regression.design(rows)
        self._y = pd.to_numeric(rows["actual_points"], errors="coerce").astype(float).to_numpy()
        self._days, self._span = days64(rows["game_date"]), (lo, hi)

    def ensure(self, refits: list[date]) -> None:
        """Fit the models for ``refits`` not fitted yet."""
        todo = sorted(set(refits) - set(self.models))
        if not todo:
            return
        lo, hi = self.span(todo)
        if self._span is None or lo < self._span[0] or hi > self._span[1]:
            self.load(todo)
        fits: list[tuple[date, str, np.ndarray, np.ndarray, np.ndarray]] = []
        for refit in todo:
            w0, w1 = days64(regression.training_window(refit, self.train_window_days))
            first, last = np.searchsorted(self._days, w0, "left"), np.searchsorted(self._days, w1, "right")
            y = self._y[first:last]
            ok = ~np.isnan(y)
            y, days = y[ok], self._days[first:last][ok]
            if len(y) < regression.MIN_TRAIN_ROWS:  # nothing to fit: the moving average stands in
                self.models[refit] = regression.fit_design(None, y, days, refit)
                continue
            X = self._X[first:last][ok]
            key = model_cache.digest(refit, X, y, days)  # the window's content: unchanged, the same model
            model = model_cache.load(key)
            if model is None:
                fits.append((refit, key, X, y, days))
            else:
                self.reused += 1
                self.models[refit] = model
        for (refit, key, *_), model in zip(fits, _fit_all(fits)):
            model_cache.store(key, model)
            self.models[refit] = model


def _fit_one(job: tuple) -> regression.Model:
    refit, _, X, y, days = job
    with blas.one_thread():
        return regression.fit_design(X, y, days, refit)


def _fit_all(jobs: list[tuple]) -> list[regression.Model]:
    """Fit the models of ``jobs`` (refit date, cache key, X, y, days), one BLAS thread each and as
    many at once as there are cores (``nbcore.predict.blas``: the same coefficients, in a third of
    the CPU time on the bench machine). Each fit is a pure function of its rows, so running them
    side by side changes nothing but the time; results come back in the order of ``jobs``."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [_fit_one(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="walkforward-fit") as pool:
        return list(pool.map(_fit_one, jobs))


def prediction_mix(params: RunParams, wh: Warehouse | None = None, dates: list[date] | None = None) -> pd.DataFrame:
    """Per system: predictions, OVER / UNDER / PASS / no-line counts, mean prediction, edge and
    confidence, rows from a fitted model (``nbcore/sql/predict/summary.sql``). Scope: the run's
    seasons and window, narrowed to ``dates`` when given (an empty list selects nothing)."""
    own = wh is None
    wh = wh or open_warehouse(params)
    try:
        start, end = params.date_bounds()
        frame = wh.query_file("predict/summary", {
            "start_date": start, "end_date": end, "seasons": params.season_list,
            "all_dates": dates is None, "dates": list(dates) if dates else [date(1900, 1, 1)],
        })
    finally:
        if own:
            wh.close()
    for c in ("predictions", "dates", "over_calls", "under_calls", "passes", "no_line", "from_fitted_model"):
        frame[c] = pd.to_numeric(frame[c]).fillna(0).astype(int)
    for c in ("mean_predicted", "mean_abs_edge", "mean_confidence"):
        frame[c] = pd.to_numeric(frame[c]).round(3)
    return frame


def run_predict(
    params: RunParams,
    wh: Warehouse | None = None,
    archive: RunArchive | None = None,
    progress: bool = True,
    dates: list[date] | None = None,
) -> PredictResult:
    """Predict every player-game in scope that needs it, chunk by chunk; stop at the first error.

    Scope: ``params.seasons``, ``start_date``/``end_date`` and, when given, ``dates``. Raises
    ``PredictError`` (carrying the partial result) when a chunk fails, after recording the
    failure in ``processor_run_history`` and the archive. Run by hand (no archive), the stage
    takes the warehouse lock and records itself in an archive of its own (``stage_session``).
    """
    with stage_session(params, STAGE, archive) as archive:
        return _run_predict(params, wh, archive, progress, dates)


def _run_predict(params: RunParams, wh: Warehouse | None, archive: RunArchive | None, progress: bool,
                 dates: list[date] | None) -> PredictResult:
    t0 = time.perf_counter()
    own = wh is None
    wh = wh or open_warehouse(params)
    run_id = archive.run_id if archive else new_run_id(params.run_name, "predict")
    result = PredictResult(run_id=run_id, repredict=params.repredict)
    models = WalkForwardModels(wh, params.train_window_days)
    inputs: PredictInputs | None = None
    try:
        if not params.table_selected(PROCESSOR):  # ``tables`` limits the run to other tables
            result.status = "skipped"
            return result
        # the plan's chunks (plan.json inside a run; a one-stage plan by hand): never targets of its own
        prog = program.for_stage(wh, params, STAGE, archive, dates)
        chunks = prog.remaining
        result.dates = sorted(d for c in chunks for d in c)
        result.stale_dates = [d for d in prog.stale(TABLE) if d in set(result.dates)]
        result.frozen_stale_dates = list(prog.frozen)
        windows = lineage.Windows.from_dates(_season_of(wh, params), model_window_start(params))
        unread: Exception | None = None
        if result.dates:  # every input of every chunk, one query each, before the first chunk
            try:
                inputs = read_inputs(wh, params, result.dates)
                models.load(sorted({regression.refit_date(d, params.refit_days) for d in result.dates}))
            except Exception as e:  # noqa: BLE001 - raised in the first chunk, as when it read there
                unread = e

        def body(ctx: ChunkContext) -> ChunkWork:
            if unread is not None:  # the stage stops at its first chunk: recorded, nothing written
                raise unread
            frame = predict_frame(wh, params, ctx.dates, models, run_id, inputs)
            written, per_date = _write_chunk(wh, params, ctx.dates, frame, windows, run_id, inputs.current)
            by_system = frame.system_id.value_counts().to_dict() if len(frame) else {}

            def committed() -> None:
                for system_id, n in by_system.items():
                    result.rows_by_system[system_id] = result.rows_by_system.get(system_id, 0) + int(n)

            return ChunkWork(history=[(PROCESSOR, PHASE, d, int(per_date.get(d, 0))) for d in ctx.dates],
                             written={TABLE: written}, detail={"player_games": int(len(frame) // len(SYSTEM_IDS))}, on_commit=committed)

        failure = run_chunks(wh, stage=STAGE, run_id=run_id, chunks=chunks, body=body, record=result,
                             processor=PROCESSOR, phase=PHASE, progress=progress,
                             on_outcome=program.outcome_recorder(archive, STAGE))
        if failure is not None:
            result.stopped(STAGE, PROCESSOR, failure)
    finally:
        result.models = [m.describe() for _, m in sorted(models.models.items())]
        result.seconds = time.perf_counter() - t0
        if archive is not None:
            archive.record_stage(STAGE, result.summary())
        if own:
            wh.close()
    if result.status == "interrupted":  # a signal to the driver: stopped at a chunk boundary
        raise RunInterrupted(result.reason)
    if result.status == "failed":
        raise PredictError(result.error or "predict failed", result)
    return result


def _season_of(wh: Warehouse, params: RunParams) -> dict[date, int]:
    games = wh.query_file("derive/final_games")
    return dict(zip(_dates(games["game_date"]), games["season_year"].astype(int)))


def _write_chunk(wh: Warehouse, params: RunParams, chunk: list[date], frame: pd.DataFrame,
                 windows: lineage.WindowFn, run_id: str,
                 current: CurrentRows | None = None) -> tuple[WriteCount, dict[date, int]]:
    """Write the chunk's predictions and their lineage (inside the chunk's transaction); the
    write counts and the rows per date (for the run history the runner records).

    Restating (the default): the chunk's dates become exactly ``frame``, touching only rows whose
    value changed, compared with ``current`` (the rows read before the stage's first chunk; read
    now when None). With ``freeze_predictions``: only the player-games predicted now are written;
    issued predictions are left alone."""
    per_date = frame.groupby("game_date").size().to_dict() if len(frame) else {}
    stamp = lineage.now()
    if restates(params):
        written = write_changes(wh, TABLE, chunk, frame, current if current is not None else CurrentRows.read(wh, chunk))
    else:
        keys = sorted(set(frame.game_id + "|" + frame.player_lookup))
        days = sorted(set(frame.game_date)) or list(chunk)
        where = ("game_date IN UNNEST(@write_dates) AND CONCAT(game_id, '|', player_lookup) "
                 "IN UNNEST(@player_games)")
        n = wh.replace_range(TABLE, chunk[0], chunk[-1], frame=frame,
                             params={"write_dates": days, "player_games": keys}, where=where) if len(frame) else 0
        written = WriteCount(inserted=int(n), changed_dates=frozenset(days if n else ()))
    lineage.record_lineage(wh, [lineage.PartitionWrite(TABLE, d, d in written.changed_dates) for d in chunk],
                           windows, run_id=run_id, stage=STAGE, stamp=stamp)
    return written, per_date
