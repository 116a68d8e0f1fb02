"""The quality gate between load and derive: phase 2 must be complete before anything is rebuilt.

For the run's range (seasons, start/end dates) the gate checks, against the schedule:

* every completed game has rows in each *required* source (``required_sources``; box scores
  and gamebooks by default, prop lines are reported but do not block);
* the raw tables are sane (validate's checks, ``nbcore.sanity``): no duplicate or NULL keys,
  no impossible box-score values, no team with fewer than five players, and the players'
  points add up to the schedule's final score, per game and team. Players per game outside
  the range calibrated on the data only warns (short-handed games are real); phase 3 rows
  that disagree with phase 2 are reported (derive rebuilds them);
* the latest ``processor_run_history`` run of each phase 2 processor for each date succeeded
  (dates with no history at all, e.g. loaded by the demo build, are fine when complete), and the
  latest load of each season's schedule succeeded;
* no unexpected file sits in a required source's folder.

Waivers (``nbcore.waivers``: per date, game or game type of a season, optionally for one
check) count as reviewed, not missing: the gate passes, lists them with reason and approver, and ``waived_dates(params)`` tells downstream stages which dates to skip.

A failing gate records ``stages/gate.json`` with ``status: blocked``, exactly what is missing
and the commands that retry it, then raises ``GateBlocked`` so nothing downstream runs. An
override (``gate_override`` + ``gate_override_reason``) lets the run go on; the reason is recorded.
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Optional

import pandas as pd

from .record import typed_record
from .archive import RunArchive
from .bucket import Bucket, BucketError
from .errors import GateBlockedError
from .load import FAILURES_FILE, find_strays, schedule_anchor, season_of_date
from .params import RunParams
from .sources import DATED_SOURCES, SCHEDULE
from .warehouse import Warehouse, open_warehouse
from .waivers import load_waivers, waived
from .shell import runbook as runbook_command

RECONCILED = "player_game_summary"  # phase 3, reconciled with phase 2 (reported, not blocking)

GATE_NAME = "phase2_complete"
STAGE = "gate"


class GateBlocked(GateBlockedError, RuntimeError):
    """The gate failed: the run stops here. ``.result`` holds what is missing and how to retry."""

    def __init__(self, result: "GateResult"):
        super().__init__(result.reason())
        self.result = result


@dataclass
class Problem:
    """One thing the gate found: blocking (required source) or only reported."""

    check: str
    source: str
    detail: str
    date: Optional[date] = None
    blocking: bool = True

    def to_json(self) -> dict:
        return {"check": self.check, "source": self.source, "date": self.date.isoformat() if self.date else None,
                "detail": self.detail, "blocking": self.blocking}


@dataclass
class GateResult:
    status: str  # passed | blocked | overridden
    gate: str
    required_sources: list[str]
    checks: pd.DataFrame  # one row per check x source: passed / problems / blocking
    problems: list[Problem]
    waived: list[dict]
    retry_commands: list[str]
    override_reason: Optional[str] = None
    scope: dict = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list[Problem] = field(default_factory=list)  # unusual but possible (calibrated checks): never block
    # raw table -> {date: state} for every expected date not present (nbcore.state, the gate's verdict's basis)
    states: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "overridden")

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]

    @property
    def reported(self) -> list[Problem]:
        return [p for p in self.problems if not p.blocking]

    def missing_frame(self) -> pd.DataFrame:
        """Everything the gate found, blocking first: check, source, date, detail."""
        rows = [p.to_json() for p in sorted(self.problems, key=lambda p: (not p.blocking, p.source, p.date or date.min))]
        return pd.DataFrame(rows, columns=["blocking", "check", "source", "date", "detail"])

    def waived_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.waived, columns=["source", "date", "game_id", "check", "present", "reason", "approved_by"])

    def reason(self) -> str:
        if self.status == "passed":
            return f"gate {self.gate} passed"
        blocking = self.blocking
        head = "; ".join(
            f"{p.source} {p.date}: {p.detail}" if p.date else f"{p.source}: {p.detail}" for p in blocking[:5]
        )
        more = f"; and {len(blocking) - 5} more" if len(blocking) > 5 else ""
        verb = "overridden" if self.status == "overridden" else "blocked"
        retry = f". Retry: {' && '.join(self.retry_commands)}" if self.retry_commands and self.status == "blocked" else ""
        return f"gate {self.gate} {verb}: {len(blocking)} problem(s) in phase 2: {head}{more}{retry}"

    def summary(self) -> dict:
        """The stage record (``stages/gate.json``); the runbook driver stops on ``status: blocked``."""
        return {
            "status": self.status,
            "gate": self.gate,
            "reason": self.reason(),
            "required_sources": self.required_sources,
            "missing": [p.to_json() for p in self.blocking],
            "not_blocking": [p.to_json() for p in self.reported],
            "warnings": [p.to_json() for p in self.warnings],
            "waived": [{**w, "date": w["date"].isoformat() if w.get("date") else None} for w in self.waived],
            "retry_commands": self.retry_commands if self.status != "passed" else [],
            "override_reason": self.override_reason,
            "checks": self.checks.to_dict("records"),
            "scope": self.scope,
            "states": self.states,
            "seconds": round(self.seconds, 3),
        }

    def _repr_html_(self) -> str:
        color = {"passed": "green", "overridden": "orange", "blocked": "red"}[self.status]
        out = f"<p><b style='color:{color}'>gate {self.gate}: {self.status.upper()}</b></p>"
        if self.status == "overridden":
            out += f"<p>Override reason: <i>{self.override_reason}</i></p>"
        out += self.checks.to_html(index=False)
        if self.blocking:
            out += "<p><b>What is missing</b></p>" + self.missing_frame().query("blocking").to_html(index=False)
        if self.retry_commands and self.status != "passed":
            out += "<p><b>Retry</b></p><pre>" + html.escape("\n".join(self.retry_commands)) + "</pre>"
        if self.reported:
            out += "<p>Reported, not blocking</p>" + self.missing_frame().query("not blocking").to_html(index=False)
        if self.warnings:
            rows = [p.to_json() for p in self.warnings]
            out += "<p>Warnings (unusual for the source and season, not impossible)</p>" + \
                pd.DataFrame(rows, columns=["check", "source", "date", "detail"]).to_html(index=False)
        if self.waived:
            out += "<p>Waived (reviewed, not missing)</p>" + self.waived_frame().to_html(index=False)
        return out


def enforce(result: GateResult, archive: RunArchive | None = None) -> None:
    """Stop here when the gate is blocked and this is part of a run (an archive is given).

    Interactively (no archive) the result is only shown, so a person can investigate.
    """
    if result.status == "blocked" and archive is not None:
        raise GateBlocked(result)


# -- waivers for downstream stages -----------------------------------------------------------

def waived_dates(params: RunParams, sources: Optional[list[str]] = None) -> list[date]:
    """Dates in the run's scope where a required source (or one of ``sources``) is waived as a whole.

    A date counts when a date waiver names it, or a game / game-type waiver covers every game of
    it. Downstream stages skip these dates explicitly (and say so) instead of failing on them.
    """
    wanted = set(sources or params.required_sources)
    start, end = params.date_bounds()
    seasons = set(params.season_list)
    candidates = {(s, d) for (s, d) in waived(params) if s in wanted and start <= d <= end and season_of_date(d) in seasons}
    if not candidates:
        return []
    complete = _complete_raw_dates(params, candidates)
    return sorted({d for (s, d) in candidates if (s, d) not in complete})


def _complete_raw_dates(params: RunParams, candidates: set[tuple[str, date]]) -> set[tuple[str, date]]:
    """The (source, date) pairs of ``candidates`` whose raw rows cover every expected game.

    A waiver says data is *unavailable*; where the data is there after all (a whole-season waiver
    of a source that has most of its dates), derivation must go on from it, not skip the date."""
    from .expected import expected_games
    from .warehouse import open_for_reading

    days = sorted({d for _, d in candidates})
    scoped = params.model_copy(update={"start_date": days[0], "end_date": days[-1]})
    with open_for_reading(scoped) as wh:
        games = expected_games(wh, scoped).games
        present = wh.query_file("derive/present_games", {"start_date": days[0], "end_date": days[-1]})
    want = games.groupby("game_date").game_id.agg(set).to_dict()
    if len(present):
        present = present.assign(game_date=pd.to_datetime(present.game_date).dt.date)
        have = present.groupby(["table_name", "game_date"]).game_id.agg(set).to_dict()
    else:
        have = {}
    return {(s, d) for (s, d) in candidates
            if want.get(d) and want[d] <= have.get((f"nba_raw.{s}", d), set())}


# -- the gate --------------------------------------------------------------------------------

def run_gate(
    params: RunParams,
    wh: Warehouse | None = None,
    archive: RunArchive | None = None,
    *,
    params_file: str | None = None,
    raise_on_block: bool = True,
) -> GateResult:
    """Check phase 2 for the run's range; record the outcome; raise ``GateBlocked`` if it fails."""
    from .validate import run_validate

    t0 = time.perf_counter()
    load_waivers(params)  # a bad waiver file fails before any work
    required = list(params.required_sources)
    sources = list(DATED_SOURCES)
    problems: list[Problem] = []
    checks: list[dict] = []
    waived_rows: list[dict] = []
    warnings: list[Problem] = []
    own = wh is None
    wh = wh or open_warehouse(params)
    try:
        # phase 3 is read only to reconcile it with phase 2 (reported, never blocking: derive rebuilds it)
        result = run_validate(params.model_copy(update={"tables": sources + [RECONCILED]}), wh, progress=False)
        index = waived(params, wh)
        # the one partition state (nbcore.state) of every raw table on every expected date
        raw = result.states.frame[result.states.frame.table.isin(sources)]
        expected_all = sorted(set(raw.game_date))

        # 1. the schedule: loaded, and its latest load succeeded
        sched_problems = _schedule_problems(params, wh, expected_all)
        problems += sched_problems
        checks.append(_check_row("schedule loaded", SCHEDULE, True, sched_problems))

        # 2. every completed game has rows: a raw partition in state missing, blocked or failed
        # without its rows blocks (a required source); a waived one is listed with its waiver
        reported: set[tuple[str, date]] = set()
        for s in sources:
            blocking = s in required
            mine = raw[raw.table == s]
            found = []
            for r in mine.itertuples(index=False):
                d, absent = r.game_date, not r.complete
                lacking = r.missing_games.split(", ") if r.missing_games else []
                if r.state == "waived":
                    if lacking and index.for_date(s, d) is None:
                        waived_rows += [_waived_row(s, d, index.for_game(s, g, d), False, game_id=g) for g in lacking]
                    continue
                if not absent or r.state == "present":
                    continue
                games = [g for g in lacking if index.for_game(s, g, d) is None]
                for g in lacking:
                    if (w := index.for_game(s, g, d)) is not None:
                        waived_rows.append(_waived_row(s, d, w, False, game_id=g))
                detail = f"{len(games)} game(s) without rows: {', '.join(games)}" if games else "no rows for this date"
                if r.state == "failed":
                    detail += f" (last load failed: {r.last_error})"
                elif r.state == "blocked":
                    detail += f" ({r.cause})"
                found.append(Problem("complete against the schedule", s, detail, d, blocking))
                reported.add((s, d))
            problems += found
            checks.append(_check_row("complete against the schedule", s, blocking, found))
            waived_days = set(mine.game_date[mine.state == "waived"])
            for (ws, d), w in sorted(index.items(), key=lambda kv: (kv[0][0], kv[0][1])):
                if ws == s and d in set(mine.game_date):
                    waived_rows.append(_waived_row(s, d, w, d not in waived_days))

        # 3. sanity checks: plausibility (calibrated; warn or block) and reconciliation, per finding
        f = result.findings
        for r in result.checks.itertuples(index=False):
            if r.table not in sources + [RECONCILED]:
                continue
            blocking = r.table in required and r.severity == "block"
            mine = f[(f.check == r.check) & (f.table == r.table) & (f.severity == r.severity)]
            found = [Problem(r.check, r.table, x.detail, x.game_date, blocking)
                     for x in mine[mine.waived_by.isna()].itertuples(index=False)]
            for x in mine[mine.waived_by.notna()].itertuples(index=False):
                waived_rows.append({"source": r.table, "date": x.game_date, "present": True, "check": r.check,
                                    "game_id": x.game_id, "reason": x.waiver_reason, "approved_by": x.approved_by})
            if r.severity == "warn":
                warnings += found
                checks.append(_check_row(f"{r.check} (calibrated; warns)", r.table, False, found))
                continue
            problems += found
            checks.append(_check_row(r.check, r.table, blocking, found))

        # 4. the latest phase 2 run per processor and date succeeded
        stray_problems = _stray_problems(params, required, expected_all)
        stray_reasons = {p.detail for p in stray_problems}
        for s in sources:
            blocking = s in required
            failed = raw[(raw.table == s) & (raw.state == "failed")]
            found = [
                Problem("latest load succeeded", s, f"latest load failed: {r.last_error}", r.game_date, blocking)
                for r in failed.itertuples(index=False)
                # each problem once: missing dates above already carry their last error, strays come below
                if (s, r.game_date) not in reported and r.last_error not in stray_reasons
            ]
            problems += found
            checks.append(_check_row("latest load succeeded", s, blocking, found))

        # 5. no unexpected files in the source folders
        for s in sources:
            found = [p for p in stray_problems if p.source == s]
            problems += found
            checks.append(_check_row("no unexpected files", s, s in required, found))
        unresolved = _has_unresolved_failures(archive, wh, index) if archive is not None else False
    finally:
        if own:
            wh.close()

    blocking = [p for p in problems if p.blocking]
    status = "passed" if not blocking else ("overridden" if params.gate_override else "blocked")
    gate = GateResult(
        status=status, gate=GATE_NAME, required_sources=required,
        checks=pd.DataFrame(checks, columns=["check", "source", "blocking", "passed", "problems"]),
        problems=problems, waived=waived_rows, warnings=warnings,
        retry_commands=_retry_commands(params, archive, params_file, unresolved) if blocking else [],
        override_reason=params.gate_override_reason if status == "overridden" else None,
        scope={"seasons": params.season_list, "start_date": str(params.start_date or ""),
               "end_date": str(params.end_date or ""), "expected_dates": len(expected_all)},
        seconds=time.perf_counter() - t0,
        states={s: {r.game_date.isoformat(): r.state for r in raw[(raw.table == s) & (raw.state != "present")].itertuples()}
                for s in sources},
    )
    if archive is not None:
        archive.record_stage(STAGE, typed_record(STAGE, gate.summary()))
    if status == "blocked" and raise_on_block:
        raise GateBlocked(gate)
    return gate


def _waived_row(source: str, day: date, w, present: bool, game_id: str | None = None) -> dict:
    return {"source": source, "date": day, "present": present, "check": w.check or "complete against the schedule",
            "game_id": game_id, "where": w.where(), "reason": w.reason, "approved_by": w.approved_by}


def _check_row(check: str, source: str, blocking: bool, found: list[Problem]) -> dict:
    return {"check": check, "source": source, "blocking": blocking, "passed": not found, "problems": len(found)}


def _schedule_problems(params: RunParams, wh: Warehouse, expected: list[date]) -> list[Problem]:
    problems = []
    if not expected:
        problems.append(Problem("schedule loaded", SCHEDULE,
                                f"the schedule has no completed games for seasons {params.season_list} in the run's range; "
                                f"load the schedule files (runbook load) or check seasons/start_date/end_date"))
        return problems
    for season in params.season_list:
        anchor = schedule_anchor(season)
        runs = wh.query_file("gate/latest_phase2_runs", {"processors": [SCHEDULE], "start_date": anchor, "end_date": anchor})
        if len(runs) and not bool(runs.success.iloc[0]):
            problems.append(Problem("schedule loaded", SCHEDULE, f"latest load of season {season} failed: {runs.error.iloc[0]}",
                                    None, True))
    return problems


def _stray_problems(params: RunParams, required: list[str], expected: list[date]) -> list[Problem]:
    start, end = params.date_bounds()
    seasons = set(params.season_list)
    in_scope = lambda d: start <= d <= end and season_of_date(d) in seasons  # noqa: E731
    try:
        strays = find_strays(Bucket(params.bucket), DATED_SOURCES, {d: 1 for d in expected}, in_scope)
    except (BucketError, OSError) as e:
        return [Problem("no unexpected files", s, f"cannot list the bucket: {e}", None, s in required) for s in required]
    return [Problem("no unexpected files", st.source, st.reason, st.date, st.source in required) for st in strays]


def _retry_commands(params: RunParams, archive: RunArchive | None, params_file: str | None,
                    unresolved: bool = False) -> list[str]:
    pfile = params_file or (str(archive.file("params.yaml")) if archive is not None else "params/<your-params>.yaml")
    cmds = []
    if archive is not None and unresolved:
        cmds.append(runbook_command("load", "--params", pfile, "--retry-failed", archive.run_id))
    else:
        cmds.append(runbook_command("load", "--params", pfile))
    if archive is not None:
        cmds.append(runbook_command("resume", archive.run_id, "--archive-dir", Path(archive.path).parent))
    else:
        cmds.append(runbook_command("gate", "--params", pfile))
    return cmds


def _has_unresolved_failures(archive: RunArchive, wh: Warehouse, index) -> bool:
    """Whether the run's failures.csv still has a failure that nothing fixed or waived since.

    A failure is fixed when the source's latest phase 2 run for that date succeeded (e.g. by
    ``runbook load --retry-failed``, which writes to its own archive), per processor_run_history.
    """
    from .resolutions import open_failures

    path = archive.file(FAILURES_FILE)
    if not path.exists():
        return False
    try:
        failures = pd.read_csv(path, dtype=str)
    except (pd.errors.EmptyDataError, ValueError, OSError):
        return False
    return bool(len(open_failures(failures, wh, index)))


__all__ = ["GateBlocked", "GateResult", "enforce", "run_gate", "waived_dates", "GATE_NAME"]
