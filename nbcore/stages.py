"""The stage registry: every stage of the runbook declared once.

A stage has a name, the notebook that runs it, the steps it appears as in a run (validate runs
twice), the phases it writes and what it reads. The driver, the plan, the report, ``why``, the
BigQuery job labels and the CLI's stage choices all read this table instead of keeping their
own lists. Importing it costs nothing (no warehouse, no pandas).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    """One notebook execution of the runbook (validate runs twice, as two steps)."""

    name: str  # the step's name in the manifest: validate_before, load, ..., report
    stage: str  # the stage it belongs to
    notebook: str  # source notebook in notebooks/
    output: str  # executed notebook's name in the archive
    parameters: tuple[tuple[str, Any], ...] = ()
    no_input: bool = False  # HTML without code cells (the report)


@dataclass(frozen=True)
class Stage:
    name: str
    notebook: str
    does: str
    writes_phases: tuple[str, ...] = ()  # phases whose tables the stage writes
    reads_phases: tuple[str, ...] = ()
    read_only: bool = False


STAGES: tuple[Stage, ...] = (
    Stage("validate", "00_validate.ipynb", "completeness matrix and sanity checks", (), ("2", "3", "4", "5", "5B"), True),
    Stage("load", "01_load.ipynb", "phase 1 files -> nba_raw", ("2",), ("1",)),
    Stage("gate", "02_gate.ipynb", "raw must be complete before anything is derived", (), ("2",), True),
    Stage("derive", "03_derive.ipynb", "phase 3 then phase 4, in processor order", ("3", "4"), ("2", "3", "4")),
    Stage("predict", "04_predict.ipynb", "phase 5 predictions from several systems", ("5",), ("3", "4")),
    Stage("grade", "05_grade.ipynb", "phase 5B grades and metrics", ("5B",), ("3", "5")),
    Stage("report", "06_report.ipynb", "before/after completion report", (), (), True),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
WRITING_STAGES: tuple[str, ...] = tuple(s.name for s in STAGES if s.writes_phases)
# phase -> the stage that writes it ("2" -> load, "3"/"4" -> derive, ...)
PHASE_STAGE: dict[str, str] = {p: s.name for s in STAGES for p in s.writes_phases}

STEPS: tuple[Step, ...] = (
    Step("validate_before", "validate", "00_validate.ipynb", "00_validate_before.ipynb", (("snapshot", "before"),)),
    Step("load", "load", "01_load.ipynb", "01_load.ipynb"),
    Step("gate", "gate", "02_gate.ipynb", "02_gate.ipynb"),
    Step("derive", "derive", "03_derive.ipynb", "03_derive.ipynb"),
    Step("predict", "predict", "04_predict.ipynb", "04_predict.ipynb"),
    Step("grade", "grade", "05_grade.ipynb", "05_grade.ipynb"),
    # validate_after fails the run on a finding that cannot be true (nbcore.validate.run_validate)
    Step("validate_after", "validate", "00_validate.ipynb", "06_validate_after.ipynb",
         (("snapshot", "after"), ("fail_on_findings", True))),
    Step("report", "report", "06_report.ipynb", "07_report.ipynb", no_input=True),
)
STEP_NAMES: tuple[str, ...] = tuple(s.name for s in STEPS)
STEP_STAGE: dict[str, str] = {s.name: s.stage for s in STEPS}  # validate_after -> validate


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"unknown stage {name!r}; stages are {', '.join(STAGE_NAMES)}")


def stage_for_table(fqn_or_name: str) -> str:
    """The stage that writes a table (``player_game_summary`` -> ``derive``)."""
    from . import schema  # local: keep this module import-light

    return PHASE_STAGE.get(schema.table(fqn_or_name).phase, "")
