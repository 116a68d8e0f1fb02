"""The demo's before state for phases 5 and 5B, built by the real predict and grade code.

Predictions exist for every final date except the downstream holes (the platform never had
features for them); grades exist for those dates except the ungraded season. Both run in
large chunks: the values do not depend on the chunking.
"""
from __future__ import annotations

from ..params import RunParams
from ..warehouse import Warehouse


def _final_dates(league) -> set:
    final = league.schedule[league.schedule.game_status == "final"]
    return set(final.game_date)


def predict_phase_5(wh: Warehouse, params: RunParams, league, holes) -> None:
    from .stage import run_predict

    dates = sorted(_final_dates(league) - set(holes.downstream_missing))
    p = params.model_copy(update={"chunk_days": 3660, "repredict": False, "run_name": "demo-before-state"})
    run_predict(p, wh=wh, progress=False, dates=dates)


def grade_phase_5b(wh: Warehouse, params: RunParams, league, holes) -> None:
    from ..grade import run_grade

    dates = sorted(_final_dates(league) - set(holes.downstream_missing) - set(holes.ungraded))
    p = params.model_copy(update={"chunk_days": 3660, "regrade": False, "run_name": "demo-before-state"})
    run_grade(p, wh=wh, progress=False, dates=dates, metrics=False)
