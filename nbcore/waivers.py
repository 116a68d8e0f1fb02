"""Waivers: a source known to be unavailable for some dates, reviewed and approved by a person.

A waiver file lives under ``params/`` and the run's ``waivers`` parameter points at it::

    waivers:
      - source: odds_api_player_points_props
        dates: [2024-04-07]
        reason: The Odds API had an outage that day; no lines were ever captured.
        approved_by: jane.doe (data platform on-call)

A waived (source, date) is not loaded and not missing: load records it as ``waived``, the
gate passes and lists it, and downstream stages skip the dates whose *required* sources are
waived (``nbcore.gate.waived_dates``) and say so.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .params import ParamsError, RunParams
from .sources import DATED_SOURCES


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    dates: list[date] = Field(min_length=1)
    reason: str = Field(min_length=10, description="why the data cannot be had, in a sentence")
    approved_by: str = Field(min_length=2, description="who reviewed and approved the waiver")

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        if v not in DATED_SOURCES:
            raise ValueError(f"unknown source {v!r}; waivable sources are {', '.join(DATED_SOURCES)}")
        return v

    @field_validator("reason", "approved_by")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    waivers: list[Waiver] = Field(default_factory=list)


def load_waivers(params: RunParams) -> list[Waiver]:
    """The waivers the run's ``waivers`` parameter points at (none if unset)."""
    path = getattr(params, "waivers", None)
    if not path:
        return []
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"waivers: file {path} not found; point 'waivers' at a YAML file under params/ or remove it")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"waivers: {path} is not valid YAML: {e}") from None
    try:
        return WaiverFile.model_validate(data).waivers
    except ValidationError as e:
        lines = [f"invalid waiver file {path}:"]
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            lines.append(f"  - {loc}: {err['msg'].removeprefix('Value error, ')}")
        lines.append("  each waiver needs source, dates, reason (a sentence) and approved_by")
        raise ParamsError("\n".join(lines)) from None


def waived(params: RunParams) -> dict[tuple[str, date], Waiver]:
    """(source, date) -> the waiver that covers it."""
    out: dict[tuple[str, date], Waiver] = {}
    for w in load_waivers(params):
        for d in w.dates:
            out[(w.source, d)] = w
    return out
