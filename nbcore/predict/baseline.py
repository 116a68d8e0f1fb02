"""System ``moving_average``: the player's recent average, nothing else.

The baseline every other system must beat on MAE. The formula is set-based SQL
(``nbcore/sql/predict/moving_average.sql``) over the feature rows of the requested dates.
"""
from __future__ import annotations

from datetime import date

import pandas as pd

from ..warehouse import Warehouse

SYSTEM_ID = "moving_average"
VERSION = "1.0"
SQL = "predict/moving_average"


def predict(wh: Warehouse, dates: list[date]) -> pd.DataFrame:
    """``game_id, game_date, player_lookup, predicted_points, sigma`` for every feature row on ``dates``."""
    return wh.query_file(SQL, {"dates": list(dates)})
