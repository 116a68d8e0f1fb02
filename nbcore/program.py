"""The program a chunked stage executes: the plan's chunks, not targets of its own.

``runbook run`` saves the plan (``nbcore.plan``) as ``plan.json``; for each chunked stage
(derive, predict, grade) it holds the stage's *program*: the exact chunks (their dates), each
table's target dates with the cause of each, and the dates left out on purpose. A stage inside
a run executes that program (``for_stage``); the outcome of every chunk is appended to
``chunks.jsonl`` in the run archive as the chunk settles (``record_outcome``), so a run killed
mid-stage still says which chunks committed, and a resumed stage executes exactly the chunks
not yet succeeded. A stage run by hand (JupyterLab, the CLI) makes a one-stage plan with the
same function (``nbcore.targets.planned_targets``) and executes it through the same path.

This is the model of SQLMesh's plan and Dagster's asset backfill: what runs is decided once, up
front, and every planned unit ends with one outcome (``succeeded``, ``failed``, ``not_run``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Optional

from .archive import RunArchive, utcnow
from .params import RunParams
from .warehouse import Warehouse

PLAN_FILE = "plan.json"
OUTCOMES_FILE = "chunks.jsonl"


@dataclass
class StageProgram:
    """One stage's chunks (in order), each table's target dates and causes, and the chunks an
    earlier attempt of this run already completed (``done``: not executed again)."""

    stage: str
    chunks: list[list[date]]
    targets: dict[str, dict[date, str]] = field(default_factory=dict)  # dataset.table -> date -> cause
    skipped: list[date] = field(default_factory=list)  # waived: never targets
    frozen: list[date] = field(default_factory=list)  # stale predictions kept as issued
    done: list[list[date]] = field(default_factory=list)
    source: str = "plan.json"  # or "one-stage plan" (a stage run by hand)

    @property
    def remaining(self) -> list[list[date]]:
        """The chunks to execute now: every planned chunk that has not succeeded yet."""
        finished = {tuple(c) for c in self.done}
        return [c for c in self.chunks if tuple(c) not in finished]

    def dates_of(self, table: str) -> set[date]:
        return set(self.targets.get(table, {}))

    def stale(self, table: str) -> list[date]:
        return sorted(d for d, c in self.targets.get(table, {}).items() if c.startswith("stale"))

    @classmethod
    def from_json(cls, stage: str, data: dict, source: str = PLAN_FILE) -> "StageProgram":
        days = lambda xs: [date.fromisoformat(str(x)) for x in xs]  # noqa: E731
        return cls(stage=stage, chunks=[days(c) for c in data.get("chunks") or []],
                   targets={t: {date.fromisoformat(d): str(c) for d, c in m.items()}
                            for t, m in (data.get("targets") or {}).items()},
                   skipped=days(data.get("skipped") or []), frozen=days(data.get("frozen") or []), source=source)


def planned(archive: Optional[RunArchive], stage: str) -> Optional[StageProgram]:
    """The stage's program from the run's ``plan.json``, minus the chunks already succeeded;
    None when the archive holds no plan with a program for the stage."""
    if archive is None or not archive.file(PLAN_FILE).exists():
        return None
    try:
        plan = json.loads(archive.file(PLAN_FILE).read_text())
    except (OSError, ValueError):
        return None
    data = (plan.get("program") or {}).get(stage) if isinstance(plan, dict) else None
    if not isinstance(data, dict):
        return None
    prog = StageProgram.from_json(stage, data)
    prog.done = [o["dates"] for o in outcomes(archive.path, stage) if o["status"] == "succeeded"
                 and o.get("plan_id") == plan.get("plan_id")]
    return prog


def one_stage(wh: Warehouse, params: RunParams, stage: str, dates: Optional[Iterable[date]] = None,
              exclude: Iterable[date] = ()) -> StageProgram:
    """A one-stage plan, made now with the plan's own function (a stage run by hand): the
    stage's targets from the partition states, narrowed to ``dates`` when given, without the
    dates the caller excludes (``exclude``: they are reported as skipped)."""
    from .targets import planned_targets, stage_program
    from .state import partition_states

    scoped = params.model_copy(update={"stages": [stage]})
    targets, frozen, skipped = planned_targets(wh, scoped, partition_states(wh, scoped))
    wanted, dropped = (set(dates) if dates is not None else None), set(exclude)
    excluded = sorted(dropped & {d for m in targets.dates.values() for d in m})
    targets.dates = {t: {d: c for d, c in m.items() if (wanted is None or d in wanted) and d not in dropped}
                     for t, m in targets.dates.items()}
    return StageProgram.from_json(stage, stage_program(scoped, targets, stage, frozen, sorted(set(skipped) | set(excluded))),
                                  "one-stage plan")


def for_stage(wh: Warehouse, params: RunParams, stage: str, archive: Optional[RunArchive],
              dates: Optional[Iterable[date]] = None, exclude: Iterable[date] = ()) -> StageProgram:
    """What the stage executes: its program in the run's ``plan.json`` (inside a run: the plan
    already left waived dates out), else a one-stage plan made now. The stage itself never
    chooses targets."""
    if dates is None:
        prog = planned(archive, stage)
        if prog is not None:
            return prog
    return one_stage(wh, params, stage, dates, exclude)


# -- chunk outcomes ------------------------------------------------------------------------------
def record_outcome(archive: Optional[RunArchive], stage: str, chunk: list[date], status: str,
                   attempt: str, plan_id: Optional[str]) -> None:
    """Append one chunk's outcome to ``chunks.jsonl`` (one line, written and flushed at once)."""
    if archive is None:
        return
    line = json.dumps({"stage": stage, "status": status, "first": chunk[0].isoformat(), "last": chunk[-1].isoformat(),
                       "dates": [d.isoformat() for d in chunk], "attempt": attempt, "plan_id": plan_id,
                       "at": utcnow()}) + "\n"
    with open(archive.file(OUTCOMES_FILE), "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def outcomes(run_dir: Path, stage: Optional[str] = None) -> list[dict]:
    """Every chunk outcome recorded in a run, oldest first (``dates`` as dates)."""
    p = Path(run_dir) / OUTCOMES_FILE
    out = []
    if not p.exists():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            o = json.loads(line)
        except ValueError:  # a line cut short by a kill: that chunk's outcome is unknown, so it runs again
            continue
        if stage is None or o.get("stage") == stage:
            o["dates"] = [date.fromisoformat(d) for d in o.get("dates") or []]
            out.append(o)
    return out


def plan_id(archive: Optional[RunArchive]) -> Optional[str]:
    """The id of the run's plan (a re-plan gets a new one, so old outcomes do not count for it)."""
    if archive is None or not archive.file(PLAN_FILE).exists():
        return None
    try:
        return json.loads(archive.file(PLAN_FILE).read_text()).get("plan_id")
    except (OSError, ValueError, AttributeError):
        return None


def outcome_recorder(archive: Optional[RunArchive], stage: str):
    """The ``on_outcome`` callback of ``run_chunks`` for one attempt of a stage (None without an archive)."""
    if archive is None:
        return None
    attempt, pid = utcnow(), plan_id(archive)
    return lambda chunk, status: record_outcome(archive, stage, list(chunk), status, attempt, pid)
