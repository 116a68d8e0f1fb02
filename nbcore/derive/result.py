"""What a derive run reports: dates processed, rows written, timings, and where it stopped."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Optional

import pandas as pd

from ..record import ChunkRecord, DeriveRecord
from .processors import PROCESSORS


@dataclass(repr=False)
class DeriveResult:
    """The outcome of ``run_derive``; ``record()`` is its typed stage record (``stages/derive.json``)."""

    run_id: str
    status: str = "succeeded"  # succeeded | failed
    reason: Optional[str] = None  # why it failed, in words (set by the chunk runner)
    chunk_days: int = 1
    checks_enabled: bool = True
    bypasses: list[str] = field(default_factory=list)
    processors: list[str] = field(default_factory=list)
    requested_dates: list[date] = field(default_factory=list)
    processed_dates: list[date] = field(default_factory=list)
    skipped_dates: list[date] = field(default_factory=list)  # waived: never derived by this run
    not_run_dates: list[date] = field(default_factory=list)  # after the failing chunk
    chunks: list[ChunkRecord] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)  # table fqn -> rows inserted (new or changed)
    rows_deleted: dict[str, int] = field(default_factory=dict)  # table fqn -> rows removed (replaced or gone)
    stale_dates: dict[str, list[str]] = field(default_factory=dict)  # table fqn -> stale dates rebuilt
    table_dates: dict[str, list[date]] = field(default_factory=dict)  # table fqn -> dates it rebuilt
    processor_seconds: dict[str, float] = field(default_factory=dict)
    checks_made: int = 0
    check_seconds: float = 0.0
    seconds: float = 0.0
    failed_date: Optional[date] = None
    failed_chunk: Optional[tuple[date, date]] = None
    failed_processor: Optional[str] = None
    error: Optional[str] = None
    dependency: Optional[dict] = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def timing_table(self) -> pd.DataFrame:
        """Per processor: rows written, seconds, seconds per date (plus the defensive checks)."""
        n_dates = max(len(self.processed_dates), 1)
        rows = []
        for p in PROCESSORS:
            if p.name not in self.processors:
                continue
            secs = self.processor_seconds.get(p.name, 0.0)
            rows.append({
                "processor": p.name, "phase": p.phase, "table": p.table.fqn,
                "rows_written": int(self.rows_written.get(p.table.fqn, 0)),
                "seconds": round(secs, 3), "ms_per_date": round(1000 * secs / n_dates, 2),
            })
        rows.append({"processor": "(defensive checks)", "phase": "", "table": "",
                     "rows_written": 0, "seconds": round(self.check_seconds, 3),
                     "ms_per_date": round(1000 * self.check_seconds / n_dates, 2)})
        return pd.DataFrame(rows)

    def chunk_table(self) -> pd.DataFrame:
        """One row per chunk: its date range, status (succeeded / failed / not_run) and time."""
        return pd.DataFrame([
            {"first": c.first, "last": c.last, "dates": len(c.dates), "status": c.status,
             "seconds": round(c.seconds, 3), "error": c.error} for c in self.chunks
        ], columns=["first", "last", "dates", "status", "seconds", "error"])

    def record(self) -> DeriveRecord:
        """The typed stage record (``nbcore.record``)."""
        return DeriveRecord(
            status=self.status, run_id=self.run_id, reason=self.reason, chunk_days=self.chunk_days,
            defensive_checks=self.checks_enabled, bypasses=list(self.bypasses), processors=list(self.processors),
            dates_requested=len(self.requested_dates), dates_processed=len(self.processed_dates),
            processed_dates=self.processed_dates, skipped_dates=self.skipped_dates, not_run_dates=self.not_run_dates,
            chunks=self.chunks, chunks_succeeded=sum(c.status == "succeeded" for c in self.chunks),
            rows_written={k: int(v) for k, v in self.rows_written.items()},
            rows_deleted={k: int(v) for k, v in self.rows_deleted.items()},
            stale_dates=self.stale_dates, table_dates=self.table_dates,
            processor_seconds={k: round(v, 3) for k, v in self.processor_seconds.items()},
            checks_made=self.checks_made, check_seconds=round(self.check_seconds, 3), seconds=round(self.seconds, 3),
            failed_date=self.failed_date, failed_chunk=list(self.failed_chunk) if self.failed_chunk else None,
            failed_processor=self.failed_processor, error=self.error, dependency=self.dependency,
            errors=[self.error] if self.error else [],
        )

    def summary(self) -> dict[str, Any]:
        """The stage record as JSON (what ``stages/derive.json`` holds)."""
        return self.record().to_json()

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.ok else "#cf222e"
        head = (
            f"<p><b style='color:{color}'>derive {self.status}</b>: {len(self.processed_dates)} of "
            f"{len(self.requested_dates)} dates in {len(self.chunks)} chunk(s) of up to {self.chunk_days} day(s), "
            f"{sum(self.rows_written.values()):,} rows, {self.seconds:.1f} s</p>"
        )
        notes = "".join(f"<p>&#9888; {html.escape(b)}</p>" for b in self.bypasses)
        if self.skipped_dates:
            notes += f"<p>skipped (waived): {', '.join(d.isoformat() for d in self.skipped_dates)}</p>"
        if self.error:
            notes += (f"<p style='color:{color}'>stopped at {self.failed_date} in <b>{html.escape(str(self.failed_processor))}</b>: "
                      f"{html.escape(self.error)}</p>")
            if self.not_run_dates:
                notes += f"<p>{len(self.not_run_dates)} later date(s) not run.</p>"
        return head + notes + self.timing_table().to_html(index=False)

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        s = (f"derive {self.status}: {len(self.processed_dates)}/{len(self.requested_dates)} dates, "
             f"{len(self.chunks)} chunk(s), {sum(self.rows_written.values())} rows, {self.seconds:.1f} s")
        if self.error:
            s += f"\n  stopped at {self.failed_date} in {self.failed_processor}: {self.error}"
        return s
