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
from .report import group_dates, range_label, season_label
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
    status: str  # the partition's state (nbcore.state.STATES), or "no games scheduled"
    scheduled_games: list[str]
    missing_games: list[str]
    rows: int
    upstream: pd.DataFrame  # table, phase, depth, status, games, missing_games, lookback_missing
    history: pd.DataFrame
    waived: Optional[str]
    command: Optional[str]
    notes: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # the changed inputs that make a present date stale
    cause: str = ""  # why the partition is in its state (nbcore.state)

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
        if self.cause and self.status not in ("present", "stale"):
            lines.append(f"  {self.cause}")
        if self.missing_games and len(self.missing_games) < len(self.scheduled_games):
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
            "state": self.status, "cause": self.cause,
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
    """Explain why ``table`` is in its state on ``day``. Read-only.

    The state of the table and of every upstream table comes from ``nbcore.state`` (the one
    function every view reads); the advice follows from it: nothing to do when present, no fill
    command for a waived date, the stage's command for a missing, stale or failed date, the
    upstream's for a blocked one, and the grade command for a season that was never graded."""
    from .state import partition_states

    t = schema.table(table)
    day = date.fromisoformat(day) if isinstance(day, str) else day
    own = wh is None
    if own:
        wh = open_warehouse(params, read_only=True) if params.backend == "duckdb" else open_warehouse(params)
    try:
        tree = _upstream_tree(t)
        final = wh.query_file("derive/final_games")
        season_of = dict(zip(pd.to_datetime(final.game_date).dt.date, final.season_year.astype(int)))
        windows = lineage.Windows.from_dates(season_of)
        lb = max([_lookback_days(windows, t, day)] + [_lookback_days(windows, u, day) for u, _ in tree])
        start = day - timedelta(days=lb)
        season = season_of.get(day)
        seasons = sorted({season_of[d] for d in season_of if start <= d <= day}) or params.season_list
        names = [t.name] + [u.name for u, _ in tree]
        scoped = params.model_copy(update={"start_date": start, "end_date": day, "seasons": seasons})
        states = partition_states(wh, scoped, tables=names)
        whole_season = None
        if t.fqn == lineage.ACCURACY and season is not None and states.state(t.fqn, day) in ("missing", "blocked"):
            whole_season = _season_states(wh, params, t, season)
        stale_detail = _stale_detail(wh, t, day) if states.state(t.fqn, day) == "stale" else []
        history = wh.query_file("runbook/history_for_date", {"day": day})
        relevant = set(names)
        if not history.empty:
            mine = history[history.processor.isin(relevant) | history.processor.str.lower().str.contains(t.name)]
            history = (mine if not mine.empty else history).sort_values("finished_at", ascending=False).reset_index(drop=True)
    finally:
        if own:
            wh.close()

    row = states.row(t.fqn, day) or {}
    status = row.get("state") or "no games scheduled"
    todays = sorted(states.expected.games.game_id[states.expected.games.game_date == day].astype(str))
    missing_games = [g for g in str(row.get("missing_games") or "").split(", ") if g] if row else []
    if row and not missing_games and row.get("games_present", 0) == 0 and status != "present":
        missing_games = todays
    expected_by_date = sorted(set(states.expected.games.game_date))

    up_rows, blocked_by, lookback_gaps = [], [], set()
    for u, depth in tree:
        ustate = states.state(u.fqn, day) or "no games scheduled"
        urow = states.row(u.fqn, day) or {}
        consumer_lb = max([_lookback_days(windows, c, day) for c in [t] + [x for x, _ in tree]
                           if u.fqn in c.upstream] + [0])
        lookback_missing = ""
        if consumer_lb:
            window = [d for d in expected_by_date if day - timedelta(days=consumer_lb) <= d < day]
            gaps = [d for d in window if states.state(u.fqn, d) in ("missing", "failed", "blocked")]
            lookback_gaps.update(gaps)
            lookback_missing = "; ".join(range_label(*g) for g in group_dates(gaps, window))
        if ustate in ("missing", "failed", "blocked"):
            blocked_by.append(u)
        up_rows.append({"table": u.name, "phase": u.phase, "depth": depth, "status": ustate,
                        "games": f"{urow.get('games_present', 0)}/{urow.get('games_expected', len(todays))}",
                        "missing_games": str(urow.get("missing_games") or ""), "lookback_missing": lookback_missing})
    upstream = pd.DataFrame(up_rows, columns=["table", "phase", "depth", "status", "games", "missing_games", "lookback_missing"])

    notes, command = [], None
    stale = (stale_detail or [str(row.get("cause"))]) if status == "stale" else []
    waived = str(row.get("cause")) if status == "waived" else _waiver(params, t, tree, day, archive_dir or Path(params.archive_dir))
    if status == "no games scheduled":
        notes.append("the schedule has no completed game on this date: nothing is expected here")
    elif status == "present":
        pass
    elif status == "waived":
        notes.append("waived: reviewed and accepted as unavailable, so no run fills it; remove the waiver "
                     "to treat it as missing again")
    elif status == "stale":
        notes.append("stale is not complete: the next derive / predict / grade restates it (and what reads it)")
        command = fill_command(params_file, t, [], day, day)
    elif whole_season is not None:
        n, total = whole_season
        notes.append(f"season {season_label(season)} was never graded: {n} of its {total} game dates have no grades")
        command = _grade_season_command(params_file, season)
    elif status == "failed":
        notes.append(f"the latest attempt failed: {row.get('last_error')} ({row.get('attempts')} attempt(s) recorded)")
        command = fill_command(params_file, t, blocked_by, day, day)
    else:  # missing or blocked
        if status == "blocked":
            notes.append(f"blocked: {row.get('cause')}; fill the upstream first (the command below does both)")
        gaps = sorted(lookback_gaps) if not params.backfill_mode else []
        gap_tables = [u for u, _ in tree if u not in blocked_by and any(
            r["table"] == u.name and r["lookback_missing"] for r in up_rows)] if gaps else []
        if gaps:
            notes.append(f"upstream lookback windows miss {len(gaps)} earlier date(s): without backfill mode, "
                         "derive's defensive checks refuse this date until they are filled")
        command = fill_command(params_file, t, blocked_by + gap_tables, min([day, *gaps]), day)
    return WhyResult(
        table=t.name, phase=t.phase, day=day, status=status, scheduled_games=todays, missing_games=missing_games,
        rows=int(row.get("rows") or 0), upstream=upstream, history=history, waived=waived, command=command,
        notes=notes, stale=stale, cause=str(row.get("cause") or ""),
    )


def _stale_detail(wh: Warehouse, t: schema.Table, day: date) -> list[str]:
    """Each changed input of a stale partition: which upstream, on which dates, when, after what."""
    out = []
    for r in lineage.stale_partitions(wh, [t.fqn], day, day).itertuples():
        span = (str(r.upstream_first_date) if r.upstream_first_date == r.upstream_last_date
                else f"{r.upstream_first_date} → {r.upstream_last_date}")
        out.append(f"{r.upstream_table} changed on {span} ({int(r.upstream_dates)} date(s)) after this partition was "
                   f"computed ({pd.Timestamp(r.computed_at):%Y-%m-%d %H:%M} UTC), inside its {lineage.window_text(t.fqn)}")
    return out


def _season_states(wh: Warehouse, params: RunParams, t: schema.Table, season: int) -> Optional[tuple[int, int]]:
    """(dates without grades, expected dates) of a whole season, when none of its dates is graded."""
    from .state import partition_states

    scoped = params.model_copy(update={"start_date": None, "end_date": None, "seasons": [season]})
    st = partition_states(wh, scoped, tables=[t.fqn]).frame
    absent = int(st.state.isin(["missing", "blocked"]).sum())
    return (absent, len(st)) if len(st) and absent == len(st) else None


def _grade_season_command(params_file: str, season: int) -> str:
    """The command that grades one whole season (the run's grade stage, limited to that season)."""
    return runbook_command("run", "--params", params_file, "--stages", "validate,grade,report", "--tables",
                           "prediction_accuracy", "--start-date", f"{season}-10-01", "--end-date", f"{season + 1}-09-30")
