"""What the predict stage reads, read once per stage run and sliced per chunk.

On BigQuery every job costs about a second whatever its size, and a read inside a chunk's
transaction also opens a session. So before its first chunk the stage reads, for *all* the dates
it will predict, one query each: the targets (``predict/targets``), the two baselines
(``predict/moving_average``, ``predict/matchup_adjusted``), the walk-forward training rows
(``WalkForwardModels.load``, in ``stage``) and, when it restates, the current predictions
(``changes.CurrentRows``). A chunk's body then reads nothing: its transaction is its writes and
the ``COMMIT``.

The results are the ones a per-chunk read gives: the chunks write disjoint dates, so no chunk
changes what a later one would have read (targets and current rows are per date; the baselines
and training rows read the feature store and box scores, which predict never writes).
Frames are kept lean (only the columns the systems use) because a full backfill is ~800 dates
of ~250 player-games.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Optional

import numpy as np
import pandas as pd

from ..warehouse import Warehouse
from . import baseline, matchup
from .changes import CurrentRows, rows_on

TARGETS_SQL = "predict/targets"
BASELINES = (baseline, matchup)  # the systems computed in SQL, one read each
KEY = ["game_id", "player_lookup"]


def game_dates(col: pd.Series) -> pd.Series:
    """A DATE column as python dates (object dtype), also when empty."""
    return pd.to_datetime(col).dt.date.astype(object)


def days64(dates) -> np.ndarray:
    """Dates (python dates, Timestamps or a DATE column) as a datetime64[ns] array, for fast slicing."""
    return pd.to_datetime(pd.Series(list(dates), dtype=object)).astype("datetime64[ns]").to_numpy()


@dataclass
class PredictInputs:
    """The stage's inputs for every date it predicts (see the module docstring)."""

    targets: pd.DataFrame  # predict/targets, ordered by (game_date, game_id, player_lookup)
    baselines: dict[str, pd.DataFrame]  # system_id -> game_id, player_lookup, predicted_points, sigma (+ day)
    current: Optional[CurrentRows] = None  # the predictions now, when the stage restates
    _target_days: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        days = days64(self.targets["game_date"])
        if len(days) and (np.diff(days.view(np.int64)) < 0).any():  # the read orders them by date; keep it so
            order = np.argsort(days, kind="mergesort")
            self.targets, days = self.targets.iloc[order].reset_index(drop=True), days[order]
        self._target_days = days
        for system_id, frame in self.baselines.items():  # sorted by day once: a chunk's rows are ranges
            self.baselines[system_id] = frame.sort_values("day", kind="mergesort").reset_index(drop=True)

    @classmethod
    def read(cls, wh: Warehouse, dates: list[date], system_ids: list[str], *, restate: bool) -> "PredictInputs":
        """One query per input for all ``dates``. ``restate``: every player-game is a target and
        the current rows are read for the change-only write; otherwise only the player-games
        missing a prediction from one of ``system_ids`` are targets."""
        dates = sorted(set(dates))
        targets = wh.query_file(TARGETS_SQL, {"dates": dates, "system_ids": list(system_ids), "repredict": restate})
        targets["game_date"] = game_dates(targets["game_date"])
        baselines = {}
        for system in BASELINES:
            frame = system.predict(wh, dates)
            baselines[system.SYSTEM_ID] = pd.DataFrame({
                "day": days64(frame["game_date"]), "game_id": frame["game_id"],
                "player_lookup": frame["player_lookup"], "predicted_points": frame["predicted_points"],
                "sigma": frame["sigma"]})
        current = CurrentRows.read(wh, dates) if restate else None
        return cls(targets.reset_index(drop=True), baselines, current)

    def targets_on(self, dates: list[date]) -> pd.DataFrame:
        """The targets on ``dates``, in order, indexed from 0 (what a read of just them returns)."""
        return self.targets.iloc[rows_on(self._target_days, dates)].reset_index(drop=True)

    def target_days_on(self, dates: list[date]) -> np.ndarray:
        """The game dates of ``targets_on(dates)`` as datetime64[ns] (converted once, at read)."""
        return self._target_days[rows_on(self._target_days, dates)]

    def baseline_on(self, system_id: str, dates: list[date]) -> pd.DataFrame:
        """``game_id, player_lookup, predicted_points, sigma`` of one SQL system on ``dates``."""
        frame = self.baselines[system_id]
        return frame.iloc[rows_on(frame["day"].to_numpy(), dates)][KEY + ["predicted_points", "sigma"]]
