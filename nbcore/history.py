"""``nba_reference.processor_run_history``: one row per processor per data date per attempt.

Every stage that writes records here, so "did the upstream processor succeed for date D?"
is a query, and ``runbook why`` can show the errors behind a gap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Optional

import pandas as pd

from . import profiling
from .warehouse import Warehouse

TABLE = "nba_reference.processor_run_history"


@dataclass
class RunRecord:
    run_id: str
    stage: str
    phase: str
    processor: str
    data_date: date
    success: bool
    rows_written: int = 0
    error: Optional[str] = None
    attempt: int = 1
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    finished_at: Optional[datetime] = None
    seconds: float = 0.0


def record_runs(wh: Warehouse, records: list[RunRecord]) -> int:
    """Append run records (one batch, one write)."""
    if not records:
        return 0
    with profiling.part("history"):
        return _record_runs(wh, records)


def _record_runs(wh: Warehouse, records: list[RunRecord]) -> int:
    now = datetime.now(timezone.utc)
    rows = []
    for r in records:
        finished = r.finished_at or now
        rows.append(
            {
                "run_id": r.run_id, "stage": r.stage, "phase": r.phase, "processor": r.processor,
                "data_date": r.data_date, "attempt": r.attempt, "success": r.success, "error": r.error,
                "rows_written": int(r.rows_written),
                "started_at": pd.Timestamp(r.started_at).tz_convert(None) if pd.Timestamp(r.started_at).tzinfo else pd.Timestamp(r.started_at),
                "finished_at": pd.Timestamp(finished).tz_convert(None) if pd.Timestamp(finished).tzinfo else pd.Timestamp(finished),
                "seconds": float(r.seconds),
            }
        )
    return wh.append(TABLE, pd.DataFrame(rows))


def latest_runs(wh: Warehouse, processor: str, start: date, end: date) -> pd.DataFrame:
    """The latest run of ``processor`` for each data date in [start, end]."""
    return wh.query_file("history/latest_runs", {"processor": processor, "start_date": start, "end_date": end})
