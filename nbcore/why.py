"""``runbook why TABLE DATE``: explain one gap, mid-backfill.

For a table and a game date: which of the schedule's games have rows there; which upstream
tables (all the way to raw) have that date and which don't, and for tables with a lookback
window, which earlier dates their upstream still misses; the latest
``processor_run_history`` rows for that date with their errors; whether the gap was waived
(a gate override or a waiver in the params); and the ``runbook run`` command that would fill
it. Read-only. From a notebook cell: ``from nbcore.why import why; why(params, "player_game_summary", "2024-04-20")``.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from .record import read_record
from . import schema
from .params import RunParams
from .report import group_dates, range_label
from .sqlfiles import render_template
from .warehouse import Warehouse, open_warehouse

from . import lineage
from .stages import PHASE_STAGE, STAGE_NAMES
from .shell import runbook as runbook_command

STAGE_ORDER = list(STAGE_NAMES)


@dataclass
class WhyResult:
    table: str
    phase: str
    day: date
    status: str  # present | stale | missing | partial | no games scheduled
    scheduled_games: list[str]
    missing_games: list[str]
    rows: int
    upstream: pd.DataFrame  # table, phase, depth, status, games, missing_games, lookback_missing
    history: pd.DataFrame
    waived: Optional[str]
    command: Optional[str]
    notes: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # the changed inputs that make a present date stale

    @property
    def missing_upstream(self) -> list[str]:
        if self.upstream.empty:
            return []
        return list(self.upstream[self.upstream.status != "present"].table)

    def explain(self) -> str:
        """The answer as plain text (what the CLI prints)."""
        lines = [f"{self.table} on {self.day}: {self.status}"
                 + (f" ({len(self.scheduled_games) - len(self.missing_games)}/{len(self.scheduled_games)} games, {self.rows} rows)"
                    if self.scheduled_games else "")]
        if self.missing_games and self.status == "partial":
            lines.append(f"  games without rows: {', '.join(self.missing_games)}")
        for cause in self.stale:
            lines.append(f"  stale: {cause}")
        if not self.upstream.empty:
            lines.append("upstream:")
            for r in self.upstream.itertuples(index=False):
                extra = f"; lookback window misses {r.lookback_missing}" if r.lookback_missing else ""
                lines.append(f"  {'  ' * (r.depth - 1)}{r.table} (phase {r.phase}): {r.status} [{r.games}]{extra}")
        if self.history.empty:
            lines.append("processor_run_history: no run recorded for this date")
        else:
            lines.append("processor_run_history (latest first):")
            for r in self.history.itertuples(index=False):
                ok = "ok" if r.success else f"FAILED: {r.error}"
                lines.append(f"  {r.finished_at}  {r.processor:<32} run {r.run_id} attempt {r.attempt}: {ok}")
        lines.append(f"waived: {self.waived}" if self.waived else "waived: no")
        lines += [f"note: {n}" for n in self.notes]
        if self.command:
            lines.append(f"fill it with:\n  {self.command}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table, "phase": self.phase, "date": self.day.isoformat(), "status": self.status,
            "scheduled_games": self.scheduled_games, "missing_games": self.missing_games, "rows": self.rows,
            "upstream": json.loads(self.upstream.to_json(orient="records", date_format="iso")),
            "history": json.loads(self.history.to_json(orient="records", date_format="iso")),
            "waived": self.waived, "command": self.command, "notes": self.notes, "stale": self.stale,
        }

    def _repr_html_(self) -> str:
        parts = [f"<h4>{html.escape(self.table)} on {self.day}: {html.escape(self.status)}</h4>"]
        if self.scheduled_games:
            parts.append(f"<p>{len(self.scheduled_games) - len(self.missing_games)}/{len(self.scheduled_games)} scheduled games "
                         f"have rows ({self.rows} rows)" + (f"; missing: {html.escape(', '.join(self.missing_games))}" if self.status == "partial" else "") + "</p>")
        parts += [f"<p><b>stale:</b> {html.escape(c)}</p>" for c in self.stale]
        if not self.upstream.empty:
            parts.append("<b>Upstream</b>" + self.upstream.to_html(index=False))
        parts.append("<b>processor_run_history</b>" + (self.history.to_html(index=False) if not self.history.empty else " <i>no run recorded</i>"))
        parts.append(f"<p><b>Waived:</b> {html.escape(self.waived or 'no')}</p>")
        parts += [f"<p><i>{html.escape(n)}</i></p>" for n in self.notes]
        if self.command:
            parts.append(f"<p><b>Fill it with:</b> <code>{html.escape(self.command)}</code></p>")
        return "\n".join(parts)

    def __repr__(self) -> str:
        return self.explain()


def _upstream_tree(table: schema.Table) -> list[tuple[schema.Table, int]]:
    """Every upstream table, breadth-first, with its depth (1 = direct); the schedule is left out."""
    out, seen, frontier = [], {table.fqn}, [(table, 0)]
    while frontier:
        nxt = []
        for t, depth in frontier:
            for name in t.upstream:
                u = schema.table(name)
                if u.fqn in seen or u.name == "nbac_schedule":
                    continue
                seen.add(u.fqn)
                out.append((u, depth + 1))
                nxt.append((u, depth + 1))
        frontier = nxt
    return out


def _lookback_days(windows: lineage.WindowFn, t: schema.Table, day: date) -> int:
    """How many days before ``day`` the table's partition reads (lineage's window rule, the same the
    stages record: N days, or the season so far for last-N-games windows)."""
    lo, _ = windows(t.fqn, day)
    return (day - lo).days


def _coverage(wh: Warehouse, t: schema.Table, start: date, end: date) -> dict[tuple[date, str], int]:
    sql = render_template("runbook/coverage", table=t.fqn, date_column=t.date_column)
    frame = wh.query(sql, {"start_date": start, "end_date": end}, label=f"coverage {t.name}")
    return {(pd.Timestamp(r.game_date).date(), str(r.game_id)): int(r.row_count) for r in frame.itertuples(index=False)}


def _waiver(params: RunParams, t: schema.Table, tree: list[tuple[schema.Table, int]], day: date,
            archive_dir: Optional[Path]) -> Optional[str]:
    """Why this gap is accepted, if it is: a waiver (``params.waivers``) for the table's own raw
    source or a raw source upstream of it, or a gate override in the latest run that recorded one
    while this date was missing."""
    raw = [t.name] if t.phase == "2" else [u.name for u, _ in tree if u.phase == "2"]
    try:
        from .waivers import waived

        table = waived(params)
    except Exception:  # no waivers module / unreadable file: nothing is waived
        table = {}
    for source in raw:
        w = table.get((source, day))
        if w is not None:
            return f"{source} waived on {day} (approved by {w.approved_by}): {w.reason}"
    base = Path(archive_dir) if archive_dir else None
    if base is not None and base.is_dir():
        for run_dir in sorted((d for d in base.iterdir() if (d / "stages" / "gate.json").exists()), reverse=True):
            gate = read_record(run_dir / "stages" / "gate.json", "gate")
            try:
                run_params = json.loads((run_dir / "manifest.json").read_text()).get("params", {}) \
                    if (run_dir / "manifest.json").exists() else {}
            except ValueError:
                continue
            reason = getattr(gate, "override_reason", None) or run_params.get("gate_override_reason")
            if gate.status == "overridden" and reason and day.isoformat() in json.dumps(gate.to_json()):
                return f"gate overridden in run {run_dir.name}: {reason}"
    return None


def fill_command(params_file: str, table: schema.Table, missing_upstream: list[schema.Table], start: date, end: date) -> str:
    """The ``runbook run`` that rebuilds ``table`` (and the upstream tables it is missing) for the dates."""
    tables = [table] + missing_upstream
    stages = {PHASE_STAGE[t.phase] for t in tables}
    if "load" in stages:
        stages.add("gate")
    first = min(STAGE_ORDER.index(s) for s in stages)
    last = max(STAGE_ORDER.index(s) for s in stages)
    chosen = ["validate", *STAGE_ORDER[first:last + 1], "report"]
    names = ",".join(dict.fromkeys(t.name for t in sorted(tables, key=lambda t: schema.PHASES.index(t.phase))))
    return runbook_command("run", "--params", params_file, "--start-date", start, "--end-date", end,
                           "--stages", ",".join(dict.fromkeys(chosen)), "--tables", names)


def why(
    params: RunParams,
    table: str,
    day: date | str,
    wh: Optional[Warehouse] = None,
    *,
    params_file: str = "params/demo.yaml",
    archive_dir: Optional[Path] = None,
) -> WhyResult:
    """Explain why ``table`` has (or lacks) ``day``. Read-only."""
    t = schema.table(table)
    day = date.fromisoformat(day) if isinstance(day, str) else day
    own = wh is None
    if own:
        wh = open_warehouse(params, read_only=True) if params.backend == "duckdb" else open_warehouse(params)
    try:
        tree = _upstream_tree(t)
        final = wh.query_file("derive/final_games")
        windows = lineage.Windows.from_dates(dict(zip(pd.to_datetime(final.game_date).dt.date,
                                                      final.season_year.astype(int))))
        lb = max([_lookback_days(windows, t, day)] + [_lookback_days(windows, u, day) for u, _ in tree])
        start = day - timedelta(days=lb)
        sched = wh.query_file("runbook/scheduled_games", {"start_date": start, "end_date": day})
        sched["game_date"] = pd.to_datetime(sched.game_date).dt.date
        games_by_date = sched.groupby("game_date").game_id.apply(lambda s: sorted(map(str, s))).to_dict()
        todays = games_by_date.get(day, [])

        def status_of(cov: dict, d: date) -> tuple[str, list[str], int]:
            games = games_by_date.get(d, [])
            if not games:
                return "no games scheduled", [], 0
            missing = [g for g in games if not cov.get((d, g))]
            rows = sum(cov.get((d, g), 0) for g in games)
            if not missing:
                return "present", [], rows
            return ("missing" if len(missing) == len(games) else "partial"), missing, rows

        cov = _coverage(wh, t, day, day)
        status, missing_games, rows = status_of(cov, day)
        stale = []
        if status == "present" and t.phase != "2":
            found = lineage.stale_partitions(wh, [t.fqn], day, day)
            for r in found.itertuples():
                span = (str(r.upstream_first_date) if r.upstream_first_date == r.upstream_last_date
                        else f"{r.upstream_first_date} → {r.upstream_last_date}")
                stale.append(f"{r.upstream_table} changed on {span} ({int(r.upstream_dates)} date(s)) after this "
                             f"partition was computed ({pd.Timestamp(r.computed_at):%Y-%m-%d %H:%M} UTC), inside its "
                             f"{lineage.window_text(t.fqn)}")
            if stale:
                status = "stale"

        up_rows, missing_up, lookback_gaps = [], [], set()
        for u, depth in tree:
            ucov = _coverage(wh, u, start, day)
            ustatus, umissing, _ = status_of(ucov, day)
            lookback_missing = ""
            consumer_lb = max([_lookback_days(windows, c, day) for c in [t] + [x for x, _ in tree]
                               if u.fqn in c.upstream] + [0])
            if consumer_lb:
                window = [d for d in sorted(games_by_date) if day - timedelta(days=consumer_lb) <= d < day]
                gaps = [d for d in window if status_of(ucov, d)[0] != "present"]
                lookback_gaps.update(gaps)
                lookback_missing = "; ".join(range_label(*g) for g in group_dates(gaps, window))
            if ustatus != "present" and todays:
                missing_up.append(u)
            up_rows.append({"table": u.name, "phase": u.phase, "depth": depth, "status": ustatus,
                            "games": f"{len(todays) - len(umissing)}/{len(todays)}", "missing_games": ", ".join(umissing),
                            "lookback_missing": lookback_missing})
        upstream = pd.DataFrame(up_rows, columns=["table", "phase", "depth", "status", "games", "missing_games", "lookback_missing"])

        history = wh.query_file("runbook/history_for_date", {"day": day})
        relevant = {t.name} | {u.name for u, _ in tree}
        if not history.empty:
            mine = history[history.processor.isin(relevant) | history.processor.str.lower().str.contains(t.name)]
            history = (mine if not mine.empty else history).sort_values("finished_at", ascending=False).reset_index(drop=True)
    finally:
        if own:
            wh.close()

    notes = []
    fill_start = min([day, *lookback_gaps])
    if lookback_gaps:
        notes.append(f"upstream lookback windows miss {len(lookback_gaps)} earlier date(s): without backfill mode, "
                     "derive's defensive checks refuse this date until they are filled")
    command = None
    if stale:
        notes.append("stale is not complete: the next derive / predict / grade restates it (and what reads it)")
    if status != "present" and todays:
        gap_tables = missing_up + [u for u, _ in tree if u not in missing_up and any(
            r["table"] == u.name and r["lookback_missing"] for r in up_rows)]
        command = fill_command(params_file, t, gap_tables, fill_start, day)
    if not todays:
        notes.append("the schedule has no completed game on this date: nothing is expected here")
    return WhyResult(
        table=t.name, phase=t.phase, day=day, status=status, scheduled_games=todays, missing_games=missing_games,
        rows=rows, upstream=upstream, history=history,
        waived=_waiver(params, t, tree, day, archive_dir or Path(params.archive_dir)), command=command, notes=notes,
        stale=stale,
    )
