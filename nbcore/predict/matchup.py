"""System ``matchup_adjusted``: the moving average, adjusted by the composite factors.

Points scale multiplicatively with the opponent's defense, the game's pace, home court and
rest. This system takes the baseline's number and multiplies it by the adjustments derive
computed in ``nba_precompute.player_composite_factors`` (matchup, pace, fatigue), shrunk
toward 1 because a 15-day defensive window is a noisy estimate of a team's true defense.
The formula is set-based SQL (``nbcore/sql/predict/matchup_adjusted.sql``).
"""
from __future__ import annotations

from datetime import date

import pandas as pd

from ..warehouse import Warehouse

SYSTEM_ID = "matchup_adjusted"
VERSION = "1.0"
SQL = "predict/matchup_adjusted"
# how far toward the estimated factor to move (1 = all the way, 0 = ignore it)
MATCHUP_SHRINK = 0.25
PACE_SHRINK = 0.0


def predict(wh: Warehouse, dates: list[date]) -> pd.DataFrame:
    """``game_id, game_date, player_lookup, predicted_points, sigma`` for every feature row on ``dates``."""
    return wh.query_file(SQL, {"dates": list(dates), "matchup_shrink": MATCHUP_SHRINK, "pace_shrink": PACE_SHRINK})
