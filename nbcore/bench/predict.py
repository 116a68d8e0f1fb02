"""Bench part ``predict``: phase 5 and 5B at full demo scale.

Works on a copy of the demo warehouse (other parts keep the before state): every raw row is
loaded and phases 3-4 derived for every date first (not timed: that is the derive part's
figure), then

* ``predict_backfill_s`` / ``grade_backfill_s``: the backfill, i.e. predicting the holes and
  grading them plus the never-graded season (what a runbook run does);
* ``predict_s`` / ``grade_s``: predicting every player-game of the five seasons from scratch
  (``repredict``, four systems, the walk-forward regression refitted every ``refit_days``) and
  grading all of it (``regrade``): the full-scale figures;
* ``predict_rows``, ``grade_rows``: rows written by those full runs;
* ``predict_mae`` / ``predict_hit_rate``: every system's MAE and OVER/UNDER hit rate over all
  graded predictions (the moving average is the baseline the others must beat).

The walk-forward model cache (``nbcore.predict.model_cache``) is a folder of the bench's own, empty
at the start: the backfill fits cold, and the full run reuses only the models the backfill fitted
on windows it did not change, as a restatement after a backfill would.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from pathlib import Path


def run(ctx) -> dict:
    from ..demo.build import build_demo, raw_frames
    from ..derive import run_derive
    from ..grade import accuracy_metrics, run_grade
    from ..predict import run_predict
    from ..warehouse import open_warehouse

    params = ctx.params
    if "demo" not in ctx.state:  # run alone (``python -m nbcore.bench predict``): build the demo first
        ctx.state["demo"] = build_demo(params, progress=False)
    league = ctx.state["demo"].league
    copy = Path(ctx.root) / "bench-predict.duckdb"
    shutil.copy(params.duckdb_path, copy)
    p = params.model_copy(update={"duckdb_path": copy, "chunk_days": 30})
    out: dict = {}
    from ..predict import model_cache

    saved_cache = os.environ.get(model_cache.ENV)
    os.environ[model_cache.ENV] = str(Path(ctx.root) / "model-cache")
    try:
        with open_warehouse(p) as wh:
            t = time.perf_counter()
            for name, frame in raw_frames(league).items():
                wh.replace_range(name, frame.game_date.min(), frame.game_date.max(), frame=frame)
            with contextlib.redirect_stdout(io.StringIO()):  # the bench's stdout is one JSON object
                derived = run_derive(p.model_copy(update={"chunk_days": 400}), wh=wh, progress=False)
            if derived.error:
                raise RuntimeError(f"bench predict: derive failed: {derived.error}")
            out["predict_prep_s"] = round(time.perf_counter() - t, 2)

            t = time.perf_counter()
            backfill = run_predict(p, wh=wh, progress=False)
            out["predict_backfill_s"] = round(time.perf_counter() - t, 2)
            out["predict_backfill_dates"] = len(backfill.dates)
            t = time.perf_counter()
            graded = run_grade(p, wh=wh, progress=False, metrics=False)
            out["grade_backfill_s"] = round(time.perf_counter() - t, 2)
            out["grade_backfill_dates"] = len(graded.dates)

            t = time.perf_counter()
            full = run_predict(p.model_copy(update={"repredict": True}), wh=wh, progress=False)
            out["predict_s"] = round(time.perf_counter() - t, 2)
            out["predict_rows"] = full.rows
            t = time.perf_counter()
            regraded = run_grade(p.model_copy(update={"regrade": True}), wh=wh, progress=False, metrics=False)
            out["grade_s"] = round(time.perf_counter() - t, 2)
            out["grade_rows"] = sum(c.rows for c in regraded.chunks)

            m = accuracy_metrics(wh, p, by=["system_id"]).set_index("system_id")
            out["predict_mae"] = {s: round(float(v), 4) for s, v in m.mae.items()}
            out["predict_hit_rate"] = {s: round(float(v), 4) for s, v in m.hit_rate.items()}
    finally:
        if saved_cache is None:
            os.environ.pop(model_cache.ENV, None)
        else:
            os.environ[model_cache.ENV] = saved_cache
        copy.unlink(missing_ok=True)
        Path(str(copy) + ".wal").unlink(missing_ok=True)
    return out
