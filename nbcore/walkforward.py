"""The walk-forward model's calendar: when it is refitted and which game dates it learns from.

The regression system is refitted every ``refit_days`` on the ``train_window_days`` before the
refit date. Lineage (a prediction's read window), the plan (what a changed input makes stale) and
the predict stage all need these dates, so they live here, apart from the model itself.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Callable

EPOCH = date(2000, 1, 3)  # refit dates are EPOCH + k * refit_days


def refit_date(day: date, refit_days: int) -> date:
    """The refit date whose model predicts ``day`` (the latest refit date on or before it)."""
    if isinstance(day, datetime):
        day = day.date()
    return EPOCH + timedelta(days=((day - EPOCH).days // refit_days) * refit_days)


def training_window(refit: date, train_window_days: int) -> tuple[date, date]:
    """The game dates a model fitted on ``refit`` may learn from: all strictly before it."""
    return refit - timedelta(days=train_window_days), refit - timedelta(days=1)


def model_window_start(refit_days: int, train_window_days: int) -> Callable[[date], date]:
    """The first date the model that predicts a game date may learn from (lineage's window)."""
    def start(day: date) -> date:
        return training_window(refit_date(day, refit_days), train_window_days)[0]
    return start
