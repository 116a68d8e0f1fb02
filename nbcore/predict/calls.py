"""From a predicted number to a call: the edge over the posted line, OVER / UNDER / PASS, and
a confidence.

Every system goes through the same function, so systems differ only in the number they
predict and the spread (``sigma``) they expect around it. The confidence is the probability,
under a normal error of that spread, that the side called is the right one: 0.5 means a
coin flip, and it only grows with the edge measured in units of the system's own spread.
A player-game with no line gets PASS, no edge and no confidence.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

OVER, UNDER, PASS = "OVER", "UNDER", "PASS"
RECOMMENDATIONS = (OVER, UNDER, PASS)

_erf = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (no scipy needed)."""
    x = np.asarray(x, dtype=float)
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(float))


def make_calls(predicted: pd.Series, sigma: pd.Series, line: pd.Series, threshold: float) -> pd.DataFrame:
    """``edge`` (predicted - line), ``recommendation`` and ``confidence`` for each row.

    PASS when there is no line or ``|edge| < threshold`` (a threshold of 0 still passes an
    edge of exactly 0: there is no side to take).
    """
    pred = predicted.astype(float).to_numpy()
    ln = pd.to_numeric(line, errors="coerce").astype(float).to_numpy()
    sig = np.maximum(sigma.astype(float).to_numpy(), 1e-6)
    has_line = ~np.isnan(ln)
    edge = np.where(has_line, np.round(pred - ln, 2), np.nan)
    absedge = np.abs(np.nan_to_num(edge))
    rec = np.where(~has_line | (absedge < threshold) | (absedge == 0), PASS, np.where(edge > 0, OVER, UNDER))
    conf = np.full(len(pred), np.nan)
    conf[has_line] = np.round(normal_cdf(absedge[has_line] / sig[has_line]), 4)  # erf only where there is a line
    return pd.DataFrame(
        {"edge": edge, "recommendation": rec, "confidence": conf}, index=predicted.index
    )
