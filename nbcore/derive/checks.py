"""Defensive checks: refuse to derive a chunk whose inputs are known to be bad.

Before a chunk [first, last] is written, for every processor and each of its upstream tables:

1. **upstream succeeded**: the upstream processor's latest recorded run for the previous game
   date (of the same season) did not fail. A date with no recorded run passes this check (the
   data check below decides), a recorded failure blocks.
2. **no gap in the lookback window**: every game the processor's window can read has rows in
   the upstream table. Windows follow the platform's counting: calendar days for team defense
   (the games of [first - N days, first - 1]); the last N games for players (each team's last N
   games before ``first``, the games any of its players' windows can touch). Windows stop at
   the season's first game, so days before a season starts are never a gap. An upstream that
   this run does not itself produce (a raw table, or a table left out by ``tables``) must also
   be complete on the chunk's own dates. Waived dates (skipped by the run) are not gaps, and
   neither is an upstream raw source's own waived date (``waived``: e.g. prop lines waived on
   dates no book offered any; the context is still built, without a line).

A failure raises ``DependencyError`` naming the upstream, the missing dates and the command that
fixes them. ``backfill_mode: true`` or ``strict_mode: false`` skip the checks (announced).

What the checks read comes from one query for the whole stage (``read_check_inputs``, before the
first chunk: on BigQuery every query is a job with about a second of latency), then each chunk is
checked in Python (``check_chunk``). Dates that earlier chunks of the same run write count as
present and succeeded (the stage stops at a failing chunk, so a later chunk only runs after
them); everything else is judged from the read, as a read just before the chunk would judge it.
``run_checks`` is the one-chunk form (read, then check).
"""
from __future__ import annotations

from ..errors import RunbookError

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Mapping

import pandas as pd

from ..warehouse import Warehouse
from ..shell import runbook as runbook_command
from .processors import Processor

PARAMS_HINT = "PARAMS.yaml"


class DependencyError(RunbookError, RuntimeError):
    """A defensive check failed: an upstream table is not ready for this chunk."""

    def __init__(self, processor: str, upstream: str, missing_dates: list[date], reason: str,
                 fix_command: str, chunk: tuple[date, date]):
        self.processor = processor
        self.upstream = upstream
        self.missing_dates = sorted(missing_dates)
        self.reason = reason
        self.fix_command = fix_command
        self.chunk = chunk
        shown = ", ".join(d.isoformat() for d in self.missing_dates[:12])
        more = f" (+{len(self.missing_dates) - 12} more)" if len(self.missing_dates) > 12 else ""
        super().__init__(
            f"{processor} for {chunk[0]}..{chunk[1]} is blocked by its upstream {upstream}: {reason} "
            f"[dates: {shown}{more}]. Fix: {fix_command} "
            f"(or set backfill_mode: true / strict_mode: false to bypass the defensive checks)"
        )

    def to_dict(self) -> dict:
        return {
            "processor": self.processor, "upstream": self.upstream, "reason": self.reason,
            "missing_dates": [d.isoformat() for d in self.missing_dates], "fix_command": self.fix_command,
            "chunk": [self.chunk[0].isoformat(), self.chunk[1].isoformat()],
        }


@dataclass
class Schedule:
    """Completed games (``derive/final_games.sql``): the reference for dates and windows."""

    games: pd.DataFrame  # game_id, game_date, season_year, game_type, home_team, away_team

    def __post_init__(self):
        g = self.games.copy()
        g["game_date"] = pd.to_datetime(g["game_date"]).dt.date
        g["season_year"] = g["season_year"].astype(int)
        self.games = g.sort_values(["game_date", "game_id"]).reset_index(drop=True)

    @cached_property
    def dates(self) -> list[date]:
        return sorted(set(self.games.game_date))

    @cached_property
    def season_of(self) -> dict[date, int]:
        return dict(zip(self.games.game_date, self.games.season_year))

    @cached_property
    def game_ids_by_date(self) -> dict[date, set[str]]:
        return {d: set(g) for d, g in self.games.groupby("game_date").game_id}

    @cached_property
    def date_of_game(self) -> dict[str, date]:
        return dict(zip(self.games.game_id, self.games.game_date))

    @cached_property
    def team_games(self) -> pd.DataFrame:
        g = self.games
        both = pd.concat([
            g.assign(team_abbr=g.home_team)[["game_id", "game_date", "season_year", "team_abbr"]],
            g.assign(team_abbr=g.away_team)[["game_id", "game_date", "season_year", "team_abbr"]],
        ])
        return both.sort_values(["team_abbr", "game_date", "game_id"]).reset_index(drop=True)

    def previous_date(self, day: date) -> date | None:
        """The last game date before ``day`` in the same season (None at a season's start)."""
        season = self.season_of.get(day)
        earlier = self.games[(self.games.game_date < day) & (self.games.season_year == season)]
        return None if earlier.empty else earlier.game_date.max()

    def window_games(self, proc: Processor, first: date) -> set[str]:
        """The games a processor's lookback window reads for a chunk starting at ``first``."""
        season = self.season_of.get(first)
        before = self.games[(self.games.game_date < first) & (self.games.season_year == season)]
        if proc.lookback_days:
            start = first - timedelta(days=proc.lookback_days)
            return set(before[before.game_date >= start].game_id)
        if proc.lookback_games:
            tg = self.team_games
            tg = tg[(tg.game_date < first) & (tg.season_year == season)]
            return set(tg.groupby("team_abbr").tail(proc.lookback_games).game_id)
        return set()

    def games_on(self, dates: list[date]) -> set[str]:
        out: set[str] = set()
        for d in dates:
            out |= self.game_ids_by_date.get(d, set())
        return out


@dataclass
class CheckPlan:
    """What one chunk's checks need: per processor and upstream, the games that must be present."""

    chunk: list[date]
    required: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (processor, upstream) -> game ids

    @property
    def earliest(self) -> date:
        return self.chunk[0]


def plan_checks(schedule: Schedule, processors: list[Processor], chunk: list[date], produced: set[str],
                excused: frozenset[date] = frozenset(), waived: Mapping[str, frozenset[date]] | None = None) -> CheckPlan:
    """``waived``: upstream table (``nba_raw.<source>``) -> its waived dates, never a gap for it."""
    plan = CheckPlan(chunk=chunk)
    own = schedule.games_on(chunk)
    excused_games = schedule.games_on(sorted(excused))
    waived = waived or {}
    for proc in processors:
        window = schedule.window_games(proc, chunk[0]) - excused_games
        for up in proc.upstreams:
            needed = window | (set() if up in produced else own)
            plan.required[(proc.name, up)] = needed - schedule.games_on(sorted(waived.get(up, ())))
    return plan


def fix_command(upstream: str, dates: list[date], failed_run: bool = False, params_file: str | None = None,
                failed_run_id: str | None = None) -> str:
    """The command an operator runs to close the upstream's gap (or redo its failed run)."""
    first, last = min(dates), max(dates)
    pf = params_file or PARAMS_HINT
    if upstream.startswith("nba_raw."):
        if failed_run and failed_run_id:
            return runbook_command("load", "--params", pf, "--retry-failed", failed_run_id)
        span = f"{first}" if first == last else f"{first}..{last}"
        return f"{runbook_command('load', '--params', pf)} (loads every missing date of the run's range, here {span})"
    if failed_run:
        return runbook_command("derive", "--params", pf, "--dates", ",".join(d.isoformat() for d in sorted(dates)))
    return runbook_command("derive", "--params", pf, "--start-date", first, "--end-date", last)


@dataclass
class CheckInputs:
    """What the checks of a stage's chunks read from the warehouse, from one query
    (``checks/chunk_inputs.sql``), taken before the first chunk runs."""

    runs: dict[tuple[str, date], tuple] = field(default_factory=dict)  # (processor, data_date) -> latest run
    games: dict[str, set[str]] = field(default_factory=dict)  # table -> game ids that have rows


def read_check_inputs(wh: Warehouse, schedule: Schedule, processors: list[Processor], chunks: list[list[date]],
                      produced: set[str], excused: frozenset[date] = frozenset(),
                      waived: Mapping[str, frozenset[date]] | None = None) -> CheckInputs:
    """Read everything the checks of ``chunks`` need, in one query for all of them.

    On BigQuery every query is a job with about a second of latency: one read for the stage
    instead of one per chunk (35 at full scale). It holds the upstream processors' latest runs
    on every chunk's previous game date, and the games each table has rows for on every date
    some chunk's checks require (its windows, and its own dates for inputs this run does not
    make). No query when no chunk needs anything (a lone season opener, say).
    """
    prevs: set[date] = set()
    needed: set[str] = set()
    for chunk in chunks:
        prev = schedule.previous_date(chunk[0])
        if prev is not None:
            prevs.add(prev)
        needed |= _all_required(plan_checks(schedule, processors, chunk, produced, excused, waived))
    if not prevs and not needed:
        return CheckInputs()
    game_dates = {schedule.date_of_game[g] for g in needed}
    # an empty list has no element type for BigQuery: name a date the other list already bounds
    anchor = min(prevs | game_dates)
    upstreams = sorted({up for proc in processors for up in proc.upstreams})
    inputs = wh.query_file("checks/chunk_inputs", {
        "processors": [up.split(".")[-1] for up in upstreams],
        "prev_dates": sorted(prevs) or [anchor], "dates": sorted(game_dates) or [anchor],
        "start_date": anchor, "end_date": max(prevs | game_dates),
    })
    runs = inputs[inputs.kind == "run"]
    games = inputs[inputs.kind == "game"]
    return CheckInputs(
        runs={(r.table_name, pd.Timestamp(r.data_date).date()): r for r in runs.itertuples()},
        games={t: set(g) for t, g in games.groupby("table_name").game_id},
    )


def _all_required(plan: CheckPlan) -> set[str]:
    return set().union(*plan.required.values()) if plan.required else set()


def check_chunk(schedule: Schedule, processors: list[Processor], chunk: list[date], produced: set[str],
                inputs: CheckInputs, excused: frozenset[date] = frozenset(), params_file: str | None = None,
                waived: Mapping[str, frozenset[date]] | None = None,
                written_before: Mapping[str, set[date]] | None = None) -> int:
    """Make every defensive check of one chunk from ``inputs``; raise ``DependencyError`` on the first failure.

    Returns the number of checks made. ``written_before``: per table, the dates that earlier
    chunks of this run write (read before any chunk ran, those rows were not there yet). They
    count as present, and as a succeeded run of that table's processor: had such a chunk
    failed, the stage would have stopped there and this chunk would not run. Everything else
    is judged from ``inputs``, so the verdicts are those of a read made just before this chunk.
    """
    first, last = chunk[0], chunk[-1]
    waived = waived or {}
    written_before = written_before or {}
    prev = schedule.previous_date(first)
    plan = plan_checks(schedule, processors, chunk, produced, excused, waived)
    needed = _all_required(plan)
    if prev is None and not needed:
        return 0
    n = 0
    # 1. the upstream processor's latest run for the previous game date succeeded
    if prev is not None:
        for proc in processors:
            for up in proc.upstreams:
                n += 1
                if prev in waived.get(up, ()):
                    continue  # waived for this source: a failed load of it is reviewed, not a broken input
                if prev in written_before.get(up, ()):
                    continue  # an earlier chunk of this run wrote it, and succeeded
                run = inputs.runs.get((up.split(".")[-1], prev))
                if run is not None and not bool(run.success):
                    err = run.error if isinstance(run.error, str) and run.error else "no error recorded"
                    raise DependencyError(
                        proc.name, up, [prev], f"its latest run for {prev} failed ({err})",
                        fix_command(up, [prev], failed_run=True, params_file=params_file,
                                    failed_run_id=str(run.run_id)), (first, last),
                    )
    # 2. no gap inside the lookback window (and, for inputs this run does not make, the chunk)
    if not needed:
        return n
    for proc in processors:
        for up in proc.upstreams:
            n += 1
            missing = plan.required[(proc.name, up)] - inputs.games.get(up, set())
            if missing and written_before.get(up):  # games on dates earlier chunks write are there by now
                missing = {g for g in missing if schedule.date_of_game[g] not in written_before[up]}
            if missing:
                dates = sorted({schedule.date_of_game[g] for g in missing})
                in_window = [d for d in dates if d < first]
                where = f"inside its {proc.lookback_text()}" if in_window else "on the chunk's dates"
                raise DependencyError(
                    proc.name, up, dates,
                    f"{len(missing)} game(s) on {len(dates)} date(s) have no rows {where}",
                    fix_command(up, dates, params_file=params_file), (first, last),
                )
    return n


def run_checks(wh: Warehouse, schedule: Schedule, processors: list[Processor], chunk: list[date],
               produced: set[str], excused: frozenset[date] = frozenset(), params_file: str | None = None,
               waived: Mapping[str, frozenset[date]] | None = None) -> int:
    """Run every defensive check for one chunk on the warehouse as it is now (one query, then
    ``check_chunk``); raise ``DependencyError`` on the first failure. Returns the checks made.

    ``produced`` holds the tables this run writes itself (their rows for the chunk's own dates
    come from this chunk, so only the window before it is checked). ``excused`` dates (waived:
    reviewed, not missing) are never a gap, for any upstream; ``waived``
    (``nbcore.waivers.waived_by_table``) excuses a raw upstream's own waived dates, so a waived
    optional source (prop lines) does not block the tables built from it. The derive stage
    itself reads once for all its chunks (``read_check_inputs``) and calls ``check_chunk``.
    """
    inputs = read_check_inputs(wh, schedule, processors, [chunk], produced, excused, waived)
    return check_chunk(schedule, processors, chunk, produced, inputs, excused, params_file, waived)
