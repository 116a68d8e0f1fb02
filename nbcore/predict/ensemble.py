"""System ``ensemble``: a fixed weighted average of the other systems.

Fixed weights (not fitted) keep the ensemble free of any look-ahead and easy to audit; the
regression carries most of the weight because it is the only system that reads the line.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SYSTEM_ID = "ensemble"
VERSION = "1.0"
WEIGHTS = {"moving_average": 0.0, "matchup_adjusted": 0.1, "regression": 0.9}


def combine(members: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Weighted mean of the members' ``predicted_points`` and ``sigma`` (frames share an index)."""
    total = sum(WEIGHTS[s] for s in members)
    pred = sum(WEIGHTS[s] * members[s]["predicted_points"].astype(float) for s in members) / total
    sigma = sum(WEIGHTS[s] * members[s]["sigma"].astype(float) for s in members) / total
    return pd.DataFrame({"predicted_points": np.maximum(pred, 0.0), "sigma": sigma})
