"""Where a run's time goes: seconds per stage and per part of the work.

Why: a restatement that rewrites a third of the rows but costs nearly a full rebuild is paying
for something other than the rows; guessing which part is how time gets wasted. With a
``Profile`` active, every statement a backend runs adds its wall time to (current stage, current
part). The code that knows what a statement is for names its part (``with part("lineage")``):

* ``sql compute``: evaluating a transformation's SELECT (derive's staged rows, predict/grade reads);
* ``change comparison``: the change-only write's compare, delete and insert;
* ``lineage`` and ``history``: the bookkeeping rows and their reads;
* ``commit``: a transaction's COMMIT;
* ``other sql``: any statement outside a named part.

What is left of a stage's wall time once its statements are counted is ``python``. Nothing is
collected unless a profile is active, and the cost when it is off is one ContextVar read per
statement. A kernel started by the driver with ``RUNBOOK_PROFILE`` set profiles itself and writes
``profile/<stage>.json`` into the run archive as the stage records itself (``write_stage``).
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

ENV = "RUNBOOK_PROFILE"
PARTS = ("sql compute", "change comparison", "lineage", "history", "commit", "other sql")
OTHER = "other sql"


@dataclass
class Profile:
    """Seconds per (stage, part) and each stage's wall time."""

    seconds: dict = field(default_factory=lambda: defaultdict(float))  # (stage, part) -> s
    statements: dict = field(default_factory=lambda: defaultdict(int))  # (stage, part) -> n
    wall: dict = field(default_factory=lambda: defaultdict(float))  # stage -> s

    def add(self, stage: str, part_name: str, seconds: float) -> None:
        self.seconds[(stage, part_name)] += seconds
        self.statements[(stage, part_name)] += 1

    def rows(self) -> list[dict]:
        """One row per stage: wall, each part, python (the rest) and the statement count."""
        stages = list(dict.fromkeys([*self.wall, *(s for s, _ in self.seconds)]))
        out = []
        for s in stages:
            row = {"stage": s, "wall_s": round(self.wall.get(s, 0.0), 2)}
            sql = 0.0
            for p in PARTS:
                row[p] = round(self.seconds.get((s, p), 0.0), 2)
                sql += self.seconds.get((s, p), 0.0)
            row["python"] = round(max(0.0, self.wall.get(s, 0.0) - sql), 2) if s in self.wall else None
            row["statements"] = sum(n for (st, _), n in self.statements.items() if st == s)
            out.append(row)
        return out

    def to_dict(self) -> dict:
        return {"rows": self.rows()}


_profile: ContextVar[Optional[Profile]] = ContextVar("runbook_profile", default=None)
_stage: ContextVar[str] = ContextVar("runbook_profile_stage", default="(none)")
_part: ContextVar[str] = ContextVar("runbook_profile_part", default=OTHER)


def current() -> Optional[Profile]:
    return _profile.get()


@contextmanager
def active(profile: Optional[Profile] = None) -> Iterator[Profile]:
    """Collect into ``profile`` (a new one by default) inside the block."""
    prof = profile or Profile()
    token = _profile.set(prof)
    try:
        yield prof
    finally:
        _profile.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Statements inside count for stage ``name``; the block's wall time is the stage's."""
    token = _stage.set(name)
    t = time.perf_counter()
    try:
        yield
    finally:
        prof = _profile.get()
        if prof is not None:
            prof.wall[name] += time.perf_counter() - t
        _stage.reset(token)


@contextmanager
def part(name: str) -> Iterator[None]:
    """Statements inside count for part ``name`` (one of ``PARTS``)."""
    token = _part.set(name)
    try:
        yield
    finally:
        _part.reset(token)


@contextmanager
def statement() -> Iterator[None]:
    """Wrap one statement a backend runs (a no-op unless a profile is active)."""
    prof = _profile.get()
    if prof is None:
        yield
        return
    t = time.perf_counter()
    try:
        yield
    finally:
        prof.add(_stage.get(), _part.get(), time.perf_counter() - t)


# -- inside the driver's kernels --------------------------------------------------------------
_kernel_profile: Optional[Profile] = None
_kernel_started = 0.0


def start_from_env() -> None:
    """In a kernel started with ``RUNBOOK_PROFILE`` set: profile everything from here on."""
    global _kernel_profile, _kernel_started
    if os.environ.get(ENV) and _kernel_profile is None:
        _kernel_profile = Profile()
        _kernel_started = time.perf_counter()
        _profile.set(_kernel_profile)


def write_stage(archive_path: Path, stage_name: str) -> None:
    """Write the kernel's profile as ``profile/<stage>.json`` (when one is being collected)."""
    prof = _kernel_profile
    if prof is None:
        return
    merged = Profile()
    for (_, p), s in prof.seconds.items():
        merged.seconds[(stage_name, p)] += s
    for (_, p), n in prof.statements.items():
        merged.statements[(stage_name, p)] += n
    merged.wall[stage_name] = time.perf_counter() - _kernel_started
    out = Path(archive_path) / "profile" / f"{stage_name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged.rows()[0], indent=2))
