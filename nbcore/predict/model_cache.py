"""Fitted walk-forward models kept between runs, found by the content of their training window.

Why: fitting is most of a full predict's arithmetic (77 refit dates on the full demo, each a
median regression of 16 weighted least-squares solves over ~60 k rows), and a restatement that
changed nothing inside a model's window would fit the same model again. A model is a pure
function of its training rows (their design matrix, points and dates), of its refit date and of
the model's code; the stage looks a model up by a digest of exactly those before fitting it
(``WalkForwardModels.ensure``). Any changed row inside the window, or any change to
``regression.py``, changes the digest, so there is nothing to invalidate and no stale model to
serve. Coefficients are stored as the fitted float64 values (``repr`` of a float round-trips
exactly): a model from the cache predicts exactly what a refit would.

Where: the folder ``$RUNBOOK_MODEL_CACHE`` (``off`` turns the cache off), by default
``~/.cache/backfill-runbook/walkforward``. One small JSON file per model, written atomically
(a temporary file renamed into place), so concurrent runs never read half a file; a folder that
cannot be written only means models are fitted again.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from .. import cachedir
from . import regression

ENV = "RUNBOOK_MODEL_CACHE"


def cache_dir() -> Optional[Path]:
    """The cache folder, or None when ``$RUNBOOK_MODEL_CACHE`` is ``off``."""
    return cachedir.folder(ENV, "walkforward")


@lru_cache(maxsize=None)
def _code_fingerprint() -> bytes:
    """The model's code and numeric settings: a change to any of them makes every digest new."""
    source = Path(regression.__file__).read_bytes()
    settings = repr((regression.VERSION, regression.MIN_TRAIN_ROWS, regression.IRLS_ITERATIONS,
                     regression.IRLS_FLOOR, regression.COLUMNS, np.__version__)).encode()
    return hashlib.blake2b(source + settings, digest_size=16).digest()


def digest(refit: date, X: np.ndarray, y: np.ndarray, days: np.ndarray) -> str:
    """The key of the model fitted on refit date ``refit`` from design ``X``, points ``y`` and
    game dates ``days`` (the rows ``regression.fit_design`` gets)."""
    h = hashlib.blake2b(_code_fingerprint(), digest_size=20)
    h.update(refit.isoformat().encode())
    for a in (X, y, days.astype("datetime64[D]")):
        a = np.ascontiguousarray(a)
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load(key: str) -> Optional[regression.Model]:
    """The model stored under ``key``, or None (not stored, unreadable, or the cache is off)."""
    text = cachedir.read(cache_dir(), f"{key}.json")
    if text is None:
        return None
    try:
        d = json.loads(text)
        return regression.Model(
            refit_date=date.fromisoformat(d["refit_date"]), window_start=date.fromisoformat(d["window_start"]),
            window_end=date.fromisoformat(d["window_end"]), n_train=int(d["n_train"]),
            coef=np.array(d["coef"], dtype=float), sigma_coef=np.array(d["sigma_coef"], dtype=float),
            mae_train=float(d["mae_train"]))
    except (ValueError, KeyError, TypeError):
        return None


def store(key: str, model: regression.Model) -> None:
    """Keep a fitted model under ``key`` (best effort: a cache that cannot be written is skipped)."""
    folder = cache_dir()
    if folder is None or not model.fitted:
        return
    data = {"refit_date": model.refit_date.isoformat(), "window_start": model.window_start.isoformat(),
            "window_end": model.window_end.isoformat(), "n_train": model.n_train,
            "coef": [float(v) for v in model.coef], "sigma_coef": [float(v) for v in model.sigma_coef],
            "mae_train": float(model.mae_train)}
    cachedir.write(folder, f"{key}.json", json.dumps(data))
