"""System ``regression``: a linear model of points on the feature row, trained walk-forward.

Why walk-forward: a model that has seen the game it predicts is worthless as a record of
what the platform would have said. The model used for game date D is the one fitted at the
*refit date* of D: refit dates fall every ``refit_days`` days from a fixed epoch, so the
model for D depends only on D (never on how a run was chunked) and is refitted at most once
per interval. It trains on feature rows joined to the points actually scored, for games in
``[refit_date - train_window_days, refit_date - 1]``: strictly before D. The window actually
used (first and last game date trained on) is written on every prediction.

The model is a median regression (least absolute deviations, by reweighted least squares):
grades are scored on absolute error, and points are right-skewed. The design matrix is built
from scale-free pieces: the line and the moving averages enter
linearly, and the matchup, pace, home and back-to-back effects enter multiplied by the
player's level (points scale with them multiplicatively). Fitting solves the normal equations
(``numpy.linalg.lstsq`` on the k x k system) on ordered input, so the fit is bit-for-bit reproducible. The spread ``sigma`` grows with the
predicted points: ``|residual| ~ a + b * predicted`` fitted on the same rows.

Before enough history exists (fewer than ``MIN_TRAIN_ROWS`` rows), the system falls back to
the moving average and leaves the training window empty.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Optional

import numpy as np
import pandas as pd

from ..walkforward import EPOCH, refit_date, training_window  # noqa: F401 - the model's calendar

SYSTEM_ID = "regression"
VERSION = "1.0"
MIN_TRAIN_ROWS = 300
IRLS_ITERATIONS = 15
IRLS_FLOOR = 0.5  # points: residuals below this weigh as much as this (keeps the weights finite)
ABS_TO_SIGMA = float(np.sqrt(np.pi / 2))  # E|e| = sigma * sqrt(2/pi) for a normal error

COLUMNS = [
    "intercept", "has_line", "line", "avg10", "avg10_x_line", "avg5", "season_avg", "minutes10",
    "no_history", "level_x_matchup", "level_x_pace", "level_x_home", "level_x_b2b", "level_x_fatigue",
    "level_x_composite",
]


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").astype(float).to_numpy()


def _flag(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        return np.zeros(len(frame))
    return frame[col].astype("boolean").fillna(False).astype(float).to_numpy()


def _first(*arrays: np.ndarray) -> np.ndarray:
    out = arrays[0].copy()
    for a in arrays[1:]:
        out = np.where(np.isnan(out), a, out)
    return out


def design(frame: pd.DataFrame) -> np.ndarray:
    """The model's inputs for each row (NULLs filled so every row can be predicted)."""
    line = _num(frame, "points_line")
    has_line = (~np.isnan(line)).astype(float)
    avg10_raw = _num(frame, "points_avg_last_10")
    avg5 = _num(frame, "points_avg_last_5")
    season = _num(frame, "points_avg_season")
    avg10 = np.nan_to_num(_first(avg10_raw, avg5, season, line), nan=0.0)
    avg5 = np.where(np.isnan(avg5), avg10, avg5)
    season = np.where(np.isnan(season), avg10, season)
    level = np.where(has_line > 0, np.nan_to_num(line), avg10)
    minutes = np.nan_to_num(_num(frame, "minutes_avg_last_10"), nan=0.0)
    no_history = np.isnan(avg10_raw).astype(float)
    matchup = np.nan_to_num(_num(frame, "matchup_factor"), nan=1.0) - 1.0
    pace = np.nan_to_num(_num(frame, "pace_factor"), nan=1.0) - 1.0
    fatigue = np.nan_to_num(_num(frame, "fatigue_score"), nan=0.0)
    composite = np.nan_to_num(_num(frame, "composite_adjustment"), nan=0.0)
    home = np.where(_flag(frame, "is_home") > 0, 1.0, -1.0)
    b2b = _flag(frame, "is_back_to_back")
    return np.column_stack([
        np.ones(len(frame)), has_line, np.nan_to_num(line), avg10, avg10 * has_line, avg5, season, minutes,
        no_history, level * matchup, level * pace, level * home, level * b2b, level * fatigue, level * composite,
    ])


@dataclass
class Model:
    """One fitted model: what it learned, from which games."""

    refit_date: date
    window_start: Optional[date]
    window_end: Optional[date]
    n_train: int
    coef: Optional[np.ndarray] = None
    sigma_coef: Optional[np.ndarray] = None
    mae_train: Optional[float] = None
    columns: list[str] = field(default_factory=lambda: list(COLUMNS))

    @property
    def fitted(self) -> bool:
        return self.coef is not None

    def describe(self) -> dict:
        d = {
            "refit_date": self.refit_date, "fitted": self.fitted, "n_train": self.n_train,
            "window_start": self.window_start, "window_end": self.window_end,
            "mae_train": None if self.mae_train is None else round(self.mae_train, 3),
        }
        if self.fitted:
            d.update({f"coef_{c}": round(float(v), 4) for c, v in zip(self.columns, self.coef)})
        return d

    def predict(self, frame: pd.DataFrame, fallback: pd.Series, fallback_sigma: pd.Series) -> pd.DataFrame:
        """Predicted points and spread; the fallback (moving average) when not fitted."""
        if not self.fitted:
            return pd.DataFrame({"predicted_points": fallback.to_numpy(dtype=float),
                                 "sigma": fallback_sigma.to_numpy(dtype=float)}, index=frame.index)
        pred, sigma = self.predict_design(design(frame), None, None)
        return pd.DataFrame({"predicted_points": pred, "sigma": sigma}, index=frame.index)

    def predict_design(self, X: np.ndarray, fallback: Optional[np.ndarray],
                       fallback_sigma: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` on rows' design matrix: (predicted points, sigma) arrays."""
        if not self.fitted:
            return np.asarray(fallback, dtype=float), np.asarray(fallback_sigma, dtype=float)
        pred = np.maximum(X @ self.coef, 0.0)
        sigma = np.maximum(ABS_TO_SIGMA * (self.sigma_coef[0] + self.sigma_coef[1] * pred), 1.5)
        return pred, sigma


def least_absolute_deviations(X: np.ndarray, y: np.ndarray, iterations: int = IRLS_ITERATIONS) -> np.ndarray:
    """Median regression by iteratively reweighted least squares (a fixed number of steps, so
    the result is reproducible). Points are right-skewed; MAE is minimized by the conditional
    median, not the mean that plain least squares estimates."""
    coef = weighted_least_squares(X, y, np.ones(len(y)))
    for _ in range(iterations):
        coef = weighted_least_squares(X, y, 1.0 / np.maximum(np.abs(y - X @ coef), IRLS_FLOOR))
    return coef


def weighted_least_squares(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Solve the (small, k x k) normal equations; lstsq there copes with an all-zero column."""
    Xw = X * w[:, None]
    coef, *_ = np.linalg.lstsq(Xw.T @ X, Xw.T @ y, rcond=None)
    return coef


def fit(train: pd.DataFrame, refit: date) -> Model:
    """Least squares on the training rows (already restricted to the window before ``refit``)."""
    y = pd.to_numeric(train["actual_points"], errors="coerce").astype(float).to_numpy()
    ok = ~np.isnan(y)
    days = pd.to_datetime(train["game_date"]).to_numpy(dtype="datetime64[D]")
    return fit_design(design(train[ok]) if ok.sum() >= MIN_TRAIN_ROWS else None, y[ok], days[ok], refit)


def fit_design(X: Optional[np.ndarray], y: np.ndarray, days: np.ndarray, refit: date) -> Model:
    """``fit`` on the design matrix of the training rows (``X``, None when there are too few rows
    to fit), their points ``y`` and game dates ``days`` (datetime64), rows with no points left out.

    The stage builds the design of every training row once and hands each refit date its slice:
    ``design`` is row by row, so the matrix is the one ``fit`` builds, in the same order."""
    n = len(y)
    if n < MIN_TRAIN_ROWS:
        return Model(refit_date=refit, window_start=None, window_end=None, n_train=int(n))
    first, last = _as_date(days.min()), _as_date(days.max())
    if last >= refit:  # the caller broke the walk-forward contract
        raise ValueError(f"training rows on/after the refit date {refit} (latest {last}): look-ahead")
    coef = least_absolute_deviations(X, y)
    fitted = np.maximum(X @ coef, 0.0)
    resid = np.abs(y - fitted)
    S = np.column_stack([np.ones(len(fitted)), fitted])
    sigma_coef = weighted_least_squares(S, resid, np.ones(len(resid)))
    if sigma_coef[0] + sigma_coef[1] * np.median(fitted) <= 0:  # degenerate: use a constant spread
        sigma_coef = np.array([float(resid.mean()), 0.0])
    return Model(
        refit_date=refit, window_start=first, window_end=last, n_train=int(n),
        coef=coef, sigma_coef=sigma_coef, mae_train=float(resid.mean()),
    )


def _as_date(day: np.datetime64) -> date:
    return pd.Timestamp(day).date()
