"""The stage contract: what every stage writes as ``stages/<step>.json``, as typed records.

Every stage reports its outcome in the same envelope (``StageRecord``): ``stage``, ``status``
(``succeeded`` | ``failed`` | ``blocked`` | ``skipped`` | ``interrupted``; the gate also says ``passed`` or
``overridden``, both letting the run go on), ``reason`` (why it failed or blocked, in words),
``rows_written`` / ``rows_deleted`` per table, ``chunks`` (one ``ChunkRecord`` type for every
chunked stage), ``seconds``, and on BigQuery ``jobs`` / ``bytes_billed``. Each stage adds its own
typed fields (its payload) in a subclass: ``DeriveRecord``, ``PredictRecord``, ``GradeRecord``,
``LoadRecord``, ``GateRecord``, ``ValidateRecord``. The JSON stays flat (envelope and payload
side by side), so ``manifest.json``'s copy of a record reads the same as before.

The driver reads a record back with ``read_record``: it is validated against its stage's type,
so a reader never guesses between ``reason``, ``message`` or ``error``; a record that does not
validate is reported as a failed stage naming the field.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Status = Literal["succeeded", "failed", "blocked", "skipped", "passed", "overridden", "interrupted"]
ChunkStatus = Literal["succeeded", "failed", "not_run"]
#: statuses that let the run go on (the gate's own words included)
GOES_ON = frozenset({"succeeded", "skipped", "passed", "overridden"})


class ChunkRecord(BaseModel):
    """One chunk of a chunked stage (derive, predict, grade): its dates, outcome and size."""

    model_config = ConfigDict(extra="forbid")

    first: date
    last: date
    dates: list[date]
    status: ChunkStatus
    rows: int = 0  # rows inserted (new or changed) by the chunk, all tables
    seconds: float = 0.0
    error: Optional[str] = None
    detail: dict[str, int] = Field(default_factory=dict)  # stage-specific counts (graded, player_games, ...)


class StageRecord(BaseModel):
    """The envelope every stage writes. Subclasses add the stage's own typed fields."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    status: Status
    run_id: Optional[str] = None
    reason: Optional[str] = None
    rows_written: dict[str, int] = Field(default_factory=dict)
    rows_deleted: dict[str, int] = Field(default_factory=dict)
    chunks: list[ChunkRecord] = Field(default_factory=list)
    seconds: float = 0.0
    jobs: Optional[int] = None
    bytes_billed: Optional[int] = None
    # the error that stopped the stage (its class name) and the exit code it maps to (nbcore.errors)
    error_class: Optional[str] = None
    exit_code: Optional[int] = None

    @property
    def ok(self) -> bool:
        return self.status in GOES_ON

    def to_json(self) -> dict[str, Any]:
        """The flat JSON of ``stages/<step>.json`` (dates as ISO strings)."""
        return self.model_dump(mode="json")


class DeriveRecord(StageRecord):
    stage: Literal["derive"] = "derive"
    chunk_days: int = 1
    defensive_checks: bool = True
    bypasses: list[str] = Field(default_factory=list)
    processors: list[str] = Field(default_factory=list)
    dates_requested: int = 0
    dates_processed: int = 0
    processed_dates: list[date] = Field(default_factory=list)
    skipped_dates: list[date] = Field(default_factory=list)
    not_run_dates: list[date] = Field(default_factory=list)
    chunks_succeeded: int = 0
    stale_dates: dict[str, list[date]] = Field(default_factory=dict)
    table_dates: dict[str, list[date]] = Field(default_factory=dict)
    processor_seconds: dict[str, float] = Field(default_factory=dict)
    checks_made: int = 0
    check_seconds: float = 0.0
    failed_date: Optional[date] = None
    failed_chunk: Optional[list[date]] = None
    failed_processor: Optional[str] = None
    error: Optional[str] = None
    dependency: Optional[dict[str, Any]] = None
    errors: list[str] = Field(default_factory=list)


class DatesRecord(StageRecord):
    """A stage over whole game dates (predict, grade): how many, their span, where it stopped."""

    dates: int = 0
    first_date: Optional[date] = None
    last_date: Optional[date] = None
    error: Optional[str] = None
    failed_chunk: Optional[dict[str, str]] = None


class PredictRecord(DatesRecord):
    stage: Literal["predict"] = "predict"
    repredict: bool = False
    player_games: int = 0
    rows_by_system: dict[str, int] = Field(default_factory=dict)
    stale_dates: list[date] = Field(default_factory=list)
    frozen_stale_dates: list[date] = Field(default_factory=list)
    models_fitted: int = 0


class GradeRecord(DatesRecord):
    stage: Literal["grade"] = "grade"
    regrade: bool = False
    graded: int = 0
    voided: int = 0
    not_eligible: dict[str, int] = Field(default_factory=dict)
    completeness_pct: dict[str, Optional[float]] = Field(default_factory=dict)
    metrics_by_system: dict[str, dict[str, Any]] = Field(default_factory=dict)


class LoadRecord(StageRecord):
    stage: Literal["load"] = "load"
    mode: str = ""
    complete: bool = True
    loaded: int = 0
    retried: int = 0
    failed: int = 0
    waived: int = 0
    retries: int = 0
    failures: list[dict[str, Any]] = Field(default_factory=list)
    waived_dates: list[dict[str, Any]] = Field(default_factory=list)
    failure_log: Optional[str] = None
    retry_command: Optional[str] = None


class GateRecord(StageRecord):
    stage: Literal["gate"] = "gate"
    gate: str = ""
    required_sources: list[str] = Field(default_factory=list)
    missing: list[dict[str, Any]] = Field(default_factory=list)
    not_blocking: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[dict[str, Any]] = Field(default_factory=list)
    waived: list[dict[str, Any]] = Field(default_factory=list)
    retry_commands: list[str] = Field(default_factory=list)
    override_reason: Optional[str] = None
    checks: list[dict[str, Any]] = Field(default_factory=list)
    scope: dict[str, Any] = Field(default_factory=dict)
    states: dict[str, dict[str, str]] = Field(default_factory=dict)  # raw table -> {date: state}, not present


class ValidateRecord(StageRecord):
    stage: Literal["validate"] = "validate"
    snapshot: Optional[str] = None
    complete: bool = True
    missing_dates: dict[str, int] = Field(default_factory=dict)
    stale_dates: dict[str, int] = Field(default_factory=dict)
    failed_checks: int = 0
    warnings: int = 0
    # findings that cannot be true and no waiver covers (check, table, count, where): fail validate_after
    open_errors: list[dict[str, Any]] = Field(default_factory=list)


RECORD_TYPES: dict[str, type[StageRecord]] = {
    cls.model_fields["stage"].default: cls
    for cls in (DeriveRecord, PredictRecord, GradeRecord, LoadRecord, GateRecord, ValidateRecord)
}


def record_type(stage: str) -> type[StageRecord]:
    """The record class of a stage (``StageRecord`` itself for a stage with no payload, e.g. report)."""
    return RECORD_TYPES.get(stage, StageRecord)


def parse_record(stage: str, data: Any, where: str = "") -> StageRecord:
    """A stage's record from its JSON, validated against the stage's type.

    Anything that does not validate becomes a failed record whose reason names the field, so
    the driver reports it as the stage's failure instead of guessing."""
    cls = record_type(stage)
    if not isinstance(data, dict):
        return StageRecord(stage=stage, status="failed", reason=f"{where or 'the record'} does not hold a mapping")
    try:
        return cls.model_validate({"stage": stage, **data})
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "(record)"
        return StageRecord(stage=stage, status="failed",
                           reason=f"{where or 'the record'}: field {field!r}: {first.get('msg')}")


def read_record(path: Path, stage: str) -> Optional[StageRecord]:
    """The record at ``path`` (``stages/<step>.json``), or None if the stage wrote none."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return StageRecord(stage=stage, status="failed", reason=f"{path.name} is not valid JSON")
    return parse_record(stage, data, path.name)


def typed_record(stage: str, data: dict) -> dict[str, Any]:
    """A stage's summary checked against its record type, as the JSON to archive.

    Stages call this when they write ``stages/<step>.json``, so a record that breaks the
    contract fails the stage that wrote it (and its tests), not a reader later."""
    cls = record_type(stage)
    return cls.model_validate({"stage": stage, **data}).to_json()
