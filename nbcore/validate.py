"""Validate: how complete is every phase, season by season, and are the rows sane?

Read-only. The expected set of dates comes from the schedule's completed games, never
from comparing one phase with another, so a date missing in every phase is still a gap.
A date counts as present in a table only when *every* game of that date has rows there
(9 of 10 games loaded is a gap, and the result says which game is missing). Before anything
is loaded, the schedule files in the bucket give the expected set (``nbcore.expected``), so
an empty warehouse is all gaps, never complete. The sanity checks (``nbcore.sanity``) give one
finding per game or date with a severity (block / warn), and the run's waivers apply to them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Optional

import pandas as pd

from . import sanity, schema
from .errors import StageFailed
from .expected import expected_games
from .params import RunParams
if TYPE_CHECKING:
    from .state import PartitionStates
from .warehouse import Warehouse, open_for_reading
from .shell import runbook as runbook_command

PHASE_ORDER = {p: i for i, p in enumerate(schema.PHASES)}


@dataclass
class TableStatus:
    """Completeness of one table in one season."""

    phase: str
    table: str
    season_year: int
    expected: list[date]
    present: list[date]
    missing: list[date]
    partial: dict[date, list[str]]  # date -> game ids without rows (dates that are partly loaded)
    games_expected: int
    games_present: int
    rows: int
    # dates taken out of expected/missing because a waiver covers them: date -> "source: reason (approved by ...)"
    waived: dict[date, str] = field(default_factory=dict)
    # present dates computed before one of their inputs changed (nbcore.lineage): present, not complete
    stale: list[date] = field(default_factory=list)
    # every expected date that is not ``present``, with its state (nbcore.state: the one source of states)
    states: dict[date, str] = field(default_factory=dict)
    causes: dict[date, str] = field(default_factory=dict)  # why each of those dates is in its state

    @property
    def complete_pct(self) -> float:
        return 100.0 * len(self.present) / len(self.expected) if self.expected else 100.0

    def to_json(self) -> dict:
        return {
            "phase": self.phase,
            "table": self.table,
            "season_year": self.season_year,
            "expected_dates": len(self.expected),
            "present_dates": len(self.present),
            "missing_dates": [d.isoformat() for d in self.missing],
            "rows": self.rows,
            "games_expected": self.games_expected,
            "games_present": self.games_present,
            "partial_dates": {d.isoformat(): games for d, games in sorted(self.partial.items())},
            "missing_ranges": [r.label() for r in date_ranges(self.missing, self.expected)],
            "waived_dates": {d.isoformat(): why for d, why in sorted(self.waived.items())},
            "stale_dates": [d.isoformat() for d in self.stale],
            # the one state of every expected date that is not present (nbcore.state), with its cause
            "states": {d.isoformat(): st for d, st in sorted(self.states.items())},
            "causes": {d.isoformat(): c for d, c in sorted(self.causes.items())},
            "state_counts": self.state_counts(),
        }

    def state_counts(self) -> dict[str, int]:
        """How many expected dates are in each state (waived dates included, unlike ``expected``)."""
        out = {"present": len(set(self.present) - set(self.states))}
        for st in self.states.values():
            out[st] = out.get(st, 0) + 1
        return out


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date
    dates: int

    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first} → {self.last} ({self.dates} dates)"


def date_ranges(missing: list[date], expected: list[date]) -> list[DateRange]:
    """Group missing dates into runs of consecutive *game* dates (off days don't break a run)."""
    if not missing:
        return []
    pos = {d: i for i, d in enumerate(sorted(expected))}
    ranges: list[DateRange] = []
    run = [sorted(missing)[0]]
    for d in sorted(missing)[1:]:
        if d in pos and run[-1] in pos and pos[d] == pos[run[-1]] + 1:
            run.append(d)
        else:
            ranges.append(DateRange(run[0], run[-1], len(run)))
            run = [d]
    ranges.append(DateRange(run[0], run[-1], len(run)))
    return ranges


@dataclass
class ValidateResult:
    """The completeness matrix plus sanity checks, as of ``generated_at``."""

    tables: list[TableStatus]
    checks: pd.DataFrame
    generated_at: str
    seconds: float
    snapshot: Optional[str] = None
    scope: dict = field(default_factory=dict)
    grading: pd.DataFrame = field(default_factory=pd.DataFrame)  # graded / eligible per season
    findings: pd.DataFrame = field(default_factory=sanity.empty_findings)  # one row per game/date a check found
    states: Optional["PartitionStates"] = None  # every (table, expected date)'s one state (nbcore.state)

    # -- lookups used by later stages -------------------------------------------
    def _for(self, table: str) -> list[TableStatus]:
        name = table.split(".")[-1]
        return [t for t in self.tables if t.table == name]

    def missing_dates(self, table: str) -> list[date]:
        return sorted(d for t in self._for(table) for d in t.missing)

    def partial_dates(self, table: str) -> dict[date, list[str]]:
        return {d: g for t in self._for(table) for d, g in t.partial.items()}

    def expected_dates(self, table: str) -> list[date]:
        return sorted(d for t in self._for(table) for d in t.expected)

    @property
    def complete(self) -> bool:
        """Every expected date present and none stale."""
        return all(not t.missing and not t.stale for t in self.tables)

    def stale_dates(self, table: str) -> list[date]:
        return sorted(d for t in self._for(table) for d in t.stale)

    @property
    def failed_checks(self) -> pd.DataFrame:
        """Checks with findings that cannot be true (severity ``block``) and are not waived."""
        if not len(self.checks):
            return self.checks
        return self.checks[(self.checks.violations > 0) & (self.checks.severity == "block")]

    @property
    def warnings(self) -> pd.DataFrame:
        """Checks with unusual but possible findings (severity ``warn``), not waived."""
        if not len(self.checks):
            return self.checks
        return self.checks[(self.checks.violations > 0) & (self.checks.severity == "warn")]

    def open_findings(self, severity: str | None = None) -> pd.DataFrame:
        f = self.findings[self.findings.waived_by.isna()]
        return f[f.severity == severity] if severity else f

    def open_errors(self) -> pd.DataFrame:
        """Findings that cannot be true (severity ``block``) and no waiver covers, one row per
        check and table: how many, and which games / dates / keys (the first few)."""
        f = self.open_findings("block")
        cols = ["check", "table", "count", "where"]
        if f.empty:
            return pd.DataFrame(columns=cols)
        out = []
        for (check, table), g in f.groupby(["check", "table"], sort=True):
            where = [_finding_where(r) for r in g.itertuples(index=False)]
            shown = "; ".join(where[:3]) + (f"; and {len(where) - 3} more" if len(where) > 3 else "")
            out.append({"check": check, "table": table, "count": len(g), "where": shown})
        return pd.DataFrame(out, columns=cols)

    def errors_reason(self) -> str:
        """One sentence per open error: check, table, how many, where (empty when there is none)."""
        return "; ".join(f"{r.check} in {r.table}: " + (f"{r.count} findings, " if r.count > 1 else "") + r.where
                         for r in self.open_errors().itertuples(index=False))

    # -- views -----------------------------------------------------------------------
    def matrix(self) -> pd.DataFrame:
        """One row per season x table: expected, present, missing dates, games, rows, % complete."""
        rows = [
            {
                "phase": t.phase, "table": t.table, "season": t.season_year,
                "expected_dates": len(t.expected), "present_dates": len(t.present), "missing_dates": len(t.missing),
                "partial_dates": len(t.partial), "games": f"{t.games_present}/{t.games_expected}",
                "rows": t.rows, "complete_pct": round(t.complete_pct, 1),
            }
            for t in self.tables
        ]
        return pd.DataFrame(rows)

    def pivot(self) -> pd.DataFrame:
        """% complete, table (rows) x season (columns): what the heatmap shows."""
        m = self.matrix()
        if m.empty:
            return m
        m["label"] = m.phase + " · " + m.table
        order = list(dict.fromkeys(m.sort_values(["phase"], key=lambda s: s.map(PHASE_ORDER), kind="stable").label))
        return m.pivot(index="label", columns="season", values="complete_pct").reindex(order)

    def missing_table(self) -> pd.DataFrame:
        """Exact missing dates per table, grouped into readable ranges (and the game that is missing)."""
        out = []
        for t in self.tables:
            for r in date_ranges(t.missing, t.expected):
                partial = [f"{d}: {', '.join(t.partial[d])}" for d in t.partial if r.first <= d <= r.last]
                out.append({"phase": t.phase, "table": t.table, "season": t.season_year, "missing": r.label(),
                            "dates": r.dates, "partial games": "; ".join(partial)})
        return pd.DataFrame(out, columns=["phase", "table", "season", "missing", "dates", "partial games"])

    def to_status_json(self) -> dict:
        """The shape ``runbook status --json`` prints and the archive's validate_*.json hold."""
        return {
            "generated_at": self.generated_at,
            "snapshot": self.snapshot,
            "scope": self.scope,
            "complete": self.complete,
            "tables": [t.to_json() for t in self.tables],
            "checks": _records(self.checks),
            "grading_completeness": self.grading.to_dict("records"),
            "findings": _records(self.findings),
            # the findings that cannot be true and no waiver covers: what fails validate_after
            "open_errors": _records(self.open_errors()),
        }

    def summary(self) -> dict:
        """What goes into the stage record (the manifest)."""
        return {
            "status": "succeeded",
            "snapshot": self.snapshot,
            "complete": self.complete,
            "missing_dates": {t.table: len(self.missing_dates(t.table)) for t in self.tables if t.missing},
            "stale_dates": {t.table: len(self.stale_dates(t.table)) for t in self.tables if t.stale},
            "failed_checks": int(len(self.failed_checks)),
            "warnings": int(len(self.warnings)),
            "open_errors": _records(self.open_errors()),
            "seconds": round(self.seconds, 3),
        }

    def heatmap(self, ax=None, title: str | None = None):
        """% complete per table and season as a heatmap (matplotlib Axes)."""
        from .charts import completeness_heatmap

        return completeness_heatmap(self.pivot(), ax=ax, title=title)


def run_validate(
    params: RunParams,
    wh: Warehouse | None = None,
    progress: bool = True,
    snapshot: str | None = None,
    archive=None,
    apply_waivers: bool = True,
    fail_on_findings: bool = False,
    checks: bool = True,
    grading: bool = True,
) -> ValidateResult:
    """Measure completeness of every tracked table against the schedule, and run sanity checks.

    A waiver means "not missing": a date a waiver covers for a raw table (or, for a derived
    table, for a required source: derive skips those dates) is neither expected nor
    missing but listed as waived (``TableStatus.waived``). ``apply_waivers=False`` keeps them
    missing (the gate applies waivers itself, game by game).

    With an archive and a snapshot name ("before"/"after"), the result is also saved as
    ``validate_<snapshot>.json`` in the run archive.

    ``fail_on_findings`` (the runbook's validate_after step sets it): a finding that cannot be
    true and is not waived (a duplicate key, an impossible value, a failed reconciliation) is
    data the backfill wrote or kept that is wrong, so the snapshot is saved, the stage record
    says ``failed`` with every such finding, and ``FindingsFailed`` is raised: the run ends
    *failed*, never *succeeded* with a report that says nothing is open. Missing dates do not
    fail it (the report lists them as open); warnings do not either.

    ``checks=False`` leaves out the sanity checks and the grading summary: the partition states
    and the completeness matrix only, what a plan reads. ``grading=False`` leaves out only the
    grading summary (``runbook status`` shows it only with ``--json``).
    """
    t0 = time.perf_counter()
    own = wh is None
    wh = wh or open_for_reading(params)  # read-only on DuckDB: validating never takes the file from a run
    try:
        start, end = params.date_bounds()
        p = {"start_date": start, "end_date": end, "seasons": params.season_list}
        exp = expected_games(wh, params)  # the schedule files stand in for seasons not loaded yet
        expected = exp.games
        if not expected.empty:
            p["start_date"], p["end_date"] = min(expected.game_date), max(expected.game_date)
            p["start_date"] = _as_date(p["start_date"])
            p["end_date"] = _as_date(p["end_date"])
        from .state import partition_states
        from .waivers import waived

        index = waived(params, wh, games=expected) if not expected.empty else None
        states = partition_states(wh, params, expected=exp, waivers=index)
        tables = table_statuses(states, apply_waivers=apply_waivers)
        wanted = checks  # ``checks=False``: states only (what a plan reads)
        if expected.empty or not wanted:
            checks, findings = sanity.empty_checks(), sanity.empty_findings()
        else:
            checks, findings = run_sanity_checks(wh, params, p, expected, index)
        grading = _grading(wh, params) if wanted and grading else pd.DataFrame()
    finally:
        if own:
            wh.close()
    result = ValidateResult(
        tables=tables,
        checks=checks,
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - t0,
        snapshot=snapshot,
        grading=grading,
        findings=findings,
        states=states,
        scope={"seasons": params.season_list, "start_date": str(params.start_date or ""), "end_date": str(params.end_date or ""),
               "backend": params.backend, "expected_from": {str(k): v for k, v in sorted(exp.origin.items())}},
    )
    errors = result.open_errors() if fail_on_findings else pd.DataFrame()
    reason = _findings_failure(result, params, archive) if len(errors) else None
    if archive is not None:
        name = f"validate_{snapshot}" if snapshot else "validate"
        archive.write_json(f"{name}.json", result.to_status_json())
        record = result.summary()
        if reason:
            record.update(status="failed", reason=reason)
        from .record import typed_record  # the stage contract's pydantic models: only a run archiving needs them

        archive.record_stage(name, typed_record("validate", record))
    if reason:
        raise FindingsFailed(reason, stage=f"validate_{snapshot}" if snapshot else "validate",
                             record={"open_errors": _records(errors)})
    return result


class FindingsFailed(StageFailed):
    """Validate (after the backfill) found rows that cannot be true and no waiver covers."""


def _finding_where(r) -> str:
    """Where one finding is: its game and date, else the detail (a key check names its example key)."""
    if isinstance(getattr(r, "game_id", None), str) and r.game_id:
        day = _as_date(r.game_date) if r.game_date is not None and r.game_date == r.game_date else None
        return f"game {r.game_id}" + (f" on {day}" if day else "")
    return str(r.detail)


def _findings_failure(result: ValidateResult, params: RunParams, archive) -> str:
    """The reason validate fails on findings: what, where, how many, and how to look."""
    errors = result.open_errors()
    n = int(errors["count"].sum())
    params_file = archive.file("params.yaml") if archive is not None else "PARAMS.yaml"
    where = f" (details: {archive.file(f'validate_{result.snapshot}.json')})" if archive is not None else ""
    step = f"validate_{result.snapshot}" if result.snapshot else "validate"
    return (f"{step} found {n} {'finding' if n == 1 else 'findings'} that cannot be true and no waiver covers: "
            f"{result.errors_reason()}. Look with `{runbook_command('status', '--params', params_file, '--checks')}`{where}; fix the rows "
            f"(or waive a finding with a reason), then resume the run")


def _grading(wh: Warehouse, params: RunParams) -> pd.DataFrame:
    """Grading completeness is graded / eligible predictions (final games, player played)."""
    if not params.table_selected("prediction_accuracy"):
        return pd.DataFrame()
    from .grade import grading_completeness

    return grading_completeness(wh, params)


def _records(frame: pd.DataFrame) -> list[dict]:
    out = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for r in out:
        for k, v in r.items():
            if isinstance(v, date):
                r[k] = v.isoformat()
    return out


def _as_date(v) -> date:
    return v.date() if isinstance(v, (pd.Timestamp, datetime)) else v


def table_statuses(states: "PartitionStates", apply_waivers: bool = True) -> list[TableStatus]:
    """Per table and season, the completeness matrix's view of the partition states.

    ``present`` are the dates with rows for every game (stale and failed ones included: their
    state says what else is wrong), ``missing`` the dates without (missing, blocked, failed).
    Waived dates leave ``expected`` and ``missing`` for ``waived``, unless ``apply_waivers`` is
    False (load: every absent date is a candidate, waivers are applied file by file)."""
    by_key: dict[tuple[str, int], TableStatus] = {}
    f = states.frame  # one pass: a frame op per group costs more than the loop (over column lists: row tuples cost more)
    cols = ["table", "phase", "season_year", "game_date", "state", "cause", "rows", "games_expected", "games_present",
            "complete", "missing_games"]
    for table, phase, season, day, state, cause, rows, n_exp, n_got, complete, lacking in zip(*(f[c].tolist() for c in cols)):
        t = by_key.get((table, season))
        if t is None:
            t = by_key[(table, season)] = TableStatus(
                phase=str(phase), table=table, season_year=int(season), expected=[], present=[], missing=[],
                partial={}, games_expected=0, games_present=0, rows=0)
        t.rows += int(rows)
        if state != "present":
            t.states[day], t.causes[day] = state, cause
        if apply_waivers and state == "waived":
            t.waived[day] = cause
            continue
        t.expected.append(day)
        t.games_expected += int(n_exp)
        t.games_present += int(n_got)
        if complete:
            t.present.append(day)
            if state == "stale":
                t.stale.append(day)
        else:
            t.missing.append(day)
            if n_got and lacking:
                t.partial[day] = lacking.split(", ")
    out = list(by_key.values())
    for t in out:
        t.expected.sort(), t.present.sort(), t.missing.sort(), t.stale.sort()
    order = {t.name: i for i, t in enumerate(schema.tracked_tables())}
    return sorted(out, key=lambda t: (order.get(t.table, 99), t.season_year))


# -- sanity checks (nbcore.sanity) ---------------------------------------------------------

CHECK_COLUMNS = sanity.CHECK_COLUMNS
run_sanity_checks = sanity.run_sanity_checks


def _status_cell(t: TableStatus) -> str:
    """One grid cell: present / expected dates, then every other state's count ("· 3 waived")."""
    counts = t.state_counts()
    marks = "".join(f" · {counts[st]} {st}" for st in ("waived", "stale", "failed", "blocked") if counts.get(st))
    color = "green" if not t.missing and not t.stale and not counts.get("failed") else \
        ("red" if not t.present else "yellow")
    return f"[{color}]{len(t.present)}/{len(t.expected)}{marks}[/{color}]"


def print_status(result: ValidateResult, checks: bool = True) -> None:
    """The completeness matrix as a terminal table (``runbook status``); ``checks=False``: the sanity
    checks were not run (the line says how to run them)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, Console().width))
    seasons = sorted({t.season_year for t in result.tables})
    table = Table(title="Completeness: present / expected game dates (expected = the schedule's completed games)")
    table.add_column("phase", justify="right")
    table.add_column("table")
    for s in seasons:
        table.add_column(f"{s}-{(s + 1) % 100:02d}", justify="right")
    by_table: dict[str, dict[int, TableStatus]] = {}
    for t in result.tables:
        by_table.setdefault(t.table, {})[t.season_year] = t
    for name, per_season in by_table.items():
        cells = []
        for s in seasons:
            t = per_season.get(s)
            if t is None:
                cells.append("")
                continue
            cells.append(_status_cell(t))
        table.add_row(next(iter(per_season.values())).phase, name, *cells)
    console.print(table)
    missing = result.missing_table()
    if not missing.empty:
        console.print("[bold]Missing dates[/bold]")
        for r in missing.itertuples(index=False):
            extra = f"  (partial: {getattr(r, '_5')})" if getattr(r, "_5") else ""
            console.print(f"  {r.table} {r.season}: {r.missing}{extra}")
    if not checks:
        console.print("[bold]Sanity checks[/bold]: not run (add --checks; a run's validate steps always run them)")
        return
    failed, warned = result.failed_checks, result.warnings
    console.print(f"[bold]Sanity checks[/bold]: {len(result.checks) - len(failed) - len(warned)} passed, "
                  f"{len(failed)} failed, {len(warned)} warned, {int(result.checks.waived.sum()) if len(result.checks) else 0} "
                  f"finding(s) waived")
    for r in failed.itertuples(index=False):
        console.print(f"  [red]{r.check}[/red] {r.table}: {r.violations} ({r.example})")
    for r in warned.itertuples(index=False):
        console.print(f"  [yellow]{r.check}[/yellow] {r.table}: {r.violations} ({r.example})")
