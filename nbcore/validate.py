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
from typing import Optional

import pandas as pd

from .record import typed_record
from . import sanity, schema
from .errors import StageFailed
from .expected import expected_games
from .params import RunParams
from .sqlfiles import render_template
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
        }


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
        present = wh.query_file("validate/present_games", p) if not expected.empty else pd.DataFrame(
            columns=["table_name", "game_date", "game_id", "row_count"])
        tables = _completeness(params, expected, present)
        if apply_waivers and not expected.empty:
            from .waivers import waived as _waived

            _apply_waivers(tables, _waived(params, wh, games=expected), params)
        if expected.empty:
            checks, findings = sanity.empty_checks(), sanity.empty_findings()
        else:
            from .waivers import waived

            checks, findings = run_sanity_checks(wh, params, p, expected, waived(params, wh, games=expected))
        _mark_stale(wh, tables)
        grading = _grading(wh, params)
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
            f"{result.errors_reason()}. Look with `{runbook_command('status', '--params', params_file)}`{where}; fix the rows "
            f"(or waive a finding with a reason), then resume the run")


def _mark_stale(wh: Warehouse, tables: list[TableStatus]) -> None:
    """Present dates that recorded lineage says were computed before an input changed (one query)."""
    derived = [t for t in tables if t.phase not in ("2",) and t.present]
    if not derived:
        return
    from . import lineage

    lo = min(min(t.present) for t in derived)
    hi = max(max(t.present) for t in derived)
    found = lineage.stale_partitions(wh, sorted({schema.table(t.table).fqn for t in derived}), lo, hi)
    by_table: dict[str, set[date]] = {}
    for r in found.itertuples():
        by_table.setdefault(r.table_name.split(".")[-1], set()).add(r.data_date)
    for t in derived:
        stale = by_table.get(t.table)
        if stale:
            t.stale = sorted(stale & set(t.present))


def _apply_waivers(tables: list[TableStatus], index, params: RunParams) -> None:
    """Move waived missing dates out of expected/missing into ``waived`` (with source, reason, approver)."""
    if not len(index):
        return
    required = list(params.required_sources)
    for t in tables:
        # a raw table: its own waivers. A derived table: the required sources' (derive skips those
        # dates); an optional source's waiver never excuses a derived table, which is built without it
        sources = [t.table] if t.phase == "2" else required
        for d in list(t.missing):
            w = next(((s, index[(s, d)]) for s in sources if (s, d) in index), None)
            if w is None:
                continue
            t.waived[d] = f"{w[0]}: {w[1].reason} (approved by {w[1].approved_by})"
            t.missing.remove(d)
            t.expected.remove(d)
            t.partial.pop(d, None)


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


def _completeness(params: RunParams, expected: pd.DataFrame, present: pd.DataFrame) -> list[TableStatus]:
    """Every (table, expected game) pair at once: one merge and one group-by, not a loop per table."""
    tables = [t for t in schema.tracked_tables() if params.table_selected(t.name)]
    expected = expected.assign(game_date=pd.to_datetime(expected.game_date).dt.date)
    counts = present.groupby(["table_name", "game_id"], as_index=False).row_count.sum()
    grid = expected.merge(pd.DataFrame({"table_name": [t.name for t in tables]}), how="cross")
    grid = grid.merge(counts, on=["table_name", "game_id"], how="left")
    grid["rows"] = grid.row_count.fillna(0).astype(int)
    grid["has"] = grid.rows > 0
    per_date = grid.groupby(["table_name", "season_year", "game_date"]).agg(
        n=("has", "size"), got=("has", "sum"), rows=("rows", "sum")).reset_index()
    per_date["complete"] = per_date.n == per_date.got
    partly = per_date[~per_date.complete & (per_date.got > 0)][["table_name", "game_date"]]
    short = grid[~grid.has].merge(partly, on=["table_name", "game_date"])
    partial = {(tn, d): sorted(ids) for (tn, d), ids in short.groupby(["table_name", "game_date"]).game_id}
    by_key = dict(tuple(per_date.groupby(["table_name", "season_year"])))
    out = []
    for t in tables:
        for season in sorted(expected.season_year.unique()):
            d = by_key.get((t.name, season))
            if d is None:
                continue
            d = d.sort_values("game_date")
            missing = list(d.game_date[~d.complete])
            out.append(
                TableStatus(
                    phase=t.phase, table=t.name, season_year=int(season), expected=list(d.game_date),
                    present=list(d.game_date[d.complete]), missing=missing,
                    partial={day: partial[(t.name, day)] for day in missing if (t.name, day) in partial},
                    games_expected=int(d.n.sum()), games_present=int(d.got.sum()), rows=int(d.rows.sum()),
                )
            )
    return out


# -- sanity checks (nbcore.sanity) ---------------------------------------------------------

CHECK_COLUMNS = sanity.CHECK_COLUMNS
run_sanity_checks = sanity.run_sanity_checks


def print_status(result: ValidateResult) -> None:
    """The completeness matrix as a terminal table (``runbook status``)."""
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
            color = "green" if not t.missing and not t.stale else ("red" if not t.present else "yellow")
            stale = f" ({len(t.stale)} stale)" if t.stale else ""
            cells.append(f"[{color}]{len(t.present)}/{len(t.expected)}{stale}[/{color}]")
        table.add_row(next(iter(per_season.values())).phase, name, *cells)
    console.print(table)
    missing = result.missing_table()
    if not missing.empty:
        console.print("[bold]Missing dates[/bold]")
        for r in missing.itertuples(index=False):
            extra = f"  (partial: {getattr(r, '_5')})" if getattr(r, "_5") else ""
            console.print(f"  {r.table} {r.season}: {r.missing}{extra}")
    failed, warned = result.failed_checks, result.warnings
    console.print(f"[bold]Sanity checks[/bold]: {len(result.checks) - len(failed) - len(warned)} passed, "
                  f"{len(failed)} failed, {len(warned)} warned, {int(result.checks.waived.sum()) if len(result.checks) else 0} "
                  f"finding(s) waived")
    for r in failed.itertuples(index=False):
        console.print(f"  [red]{r.check}[/red] {r.table}: {r.violations} ({r.example})")
    for r in warned.itertuples(index=False):
        console.print(f"  [yellow]{r.check}[/yellow] {r.table}: {r.violations} ({r.example})")
