"""``runbook plan``: what a run would write, before anything is written.

Per stage and table: the dates that would be written (the table's missing dates against the
schedule, from the same validate the run starts with), the games on those dates, and the
rows expected — the table's observed rows per game times those games (None when the table
has no rows yet to learn from). For the load stage, how many of those dates have their file
in the bucket. On BigQuery, when the backend offers ``dry_run_bytes``, the bytes a dry run of
each stage's SQL would process.

Per derived table (phases 3-5B), missing and **stale** dates are planned separately, each with its
cause ("2023-04-18 stale: player_game_summary is rebuilt by this run on 2023-04-15, inside its
10-game / season-to-date window"): the closure of ``nbcore.lineage`` over the missing raw dates,
the missing derived dates and the stale partitions found from lineage, computed by the same
partition states (``nbcore.state``) by ``planned_targets``, the one place targets are chosen. Per
chunked stage the plan also holds its *program* (``stage_program``): the exact chunks the stage
executes. ``runbook run`` saves this plan as ``plan.json`` and the stages run its chunks
(``nbcore.program``); a stage run by hand makes a one-stage plan the same way.

Writes nothing: DuckDB is opened read-only, the bucket is only listed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Optional

import pandas as pd

from . import lineage, schema
from .params import RunParams
from .report import group_dates, range_label
from .sqlfiles import SQL_DIR, read_sql
from .jobs_estimate import RULE as JOBS_RULE, estimate_jobs
from .targets import CHUNKED_STAGES, _stage_dates, planned_targets, stage_program
from .warehouse import Warehouse, open_warehouse

from .stages import PHASE_STAGE, WRITING_STAGES  # the registry
COLUMNS = ["stage", "phase", "table", "dates", "missing", "stale", "first", "last", "ranges", "games",
           "expected_rows", "files_in_bucket", "bytes_processed"]


@dataclass
class PlanResult:
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)
    # per table (dataset.table): every planned date with its cause (missing / stale: …)
    targets: dict[str, dict[str, str]] = field(default_factory=dict)
    frozen: dict[str, dict[str, str]] = field(default_factory=dict)  # stale but kept (freeze_predictions)
    jobs: dict[str, int] = field(default_factory=dict)  # BigQuery: estimated jobs per stage (nbcore.jobs_estimate)
    # per chunked stage: its chunks as [first, last, dates], cut as the stage cuts them (nbcore.chunks)
    chunks: dict[str, list[list]] = field(default_factory=dict)
    # per chunked stage: what it executes (``stage_program``): its chunks' dates, targets, skipped dates
    program: dict[str, dict[str, Any]] = field(default_factory=dict)
    # {table: {date: {state, cause}}} for every partition in scope that is not present (nbcore.state)
    states: dict[str, dict[str, dict]] = field(default_factory=dict)

    def dates(self, table: str) -> list[date]:
        """The planned dates of a table (``dataset.table`` or bare name)."""
        fqn = schema.table(table).fqn
        return sorted(date.fromisoformat(d) for d in self.targets.get(fqn, {}))

    @property
    def total_rows(self) -> int:
        return int(self.frame.expected_rows.fillna(0).sum()) if not self.frame.empty else 0

    def by_stage(self) -> pd.DataFrame:
        if self.frame.empty:
            return pd.DataFrame(columns=["stage", "tables", "table-dates", "expected_rows"])
        g = self.frame.groupby("stage", sort=False)
        out = pd.DataFrame({"tables": g.table.count(), "table-dates": g.dates.sum(),
                            "expected_rows": g.expected_rows.sum(min_count=1),
                            "bytes_processed": g.bytes_processed.sum(min_count=1)}).reset_index()
        if self.jobs:
            out["jobs"] = out.stage.map(self.jobs).astype("Int64")
        return out

    def to_json(self) -> dict:
        return {"tables": json.loads(self.frame.to_json(orient="records", date_format="iso")),
                "total_expected_rows": self.total_rows, "gate": self.gate, "notes": self.notes,
                "targets": self.targets, "frozen_stale": self.frozen, "chunks": self.chunks,
                "program": self.program, "states": self.states,
                **({"jobs_by_stage": self.jobs, "jobs_total": sum(self.jobs.values()), "jobs_rule": JOBS_RULE}
                   if self.jobs else {})}

    def print(self) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(width=max(140, Console().width))
        t = Table(title="Plan: what the run would write (nothing has been written)")
        for col in ("stage", "table", "dates", "missing", "stale", "ranges", "games", "expected rows", "files"):
            t.add_column(col, justify="right" if col in ("dates", "missing", "stale", "games", "expected rows") else "left")
        for r in self.frame.itertuples(index=False):
            rows = "?" if pd.isna(r.expected_rows) else f"{int(r.expected_rows):,}"
            files = "" if pd.isna(r.files_in_bucket) else f"{int(r.files_in_bucket)}/{r.dates} in bucket"
            if not pd.isna(r.bytes_processed):
                files += f" {int(r.bytes_processed) / 1e9:.2f} GB"
            ranges = r.ranges if len(r.ranges) < 70 else r.ranges[:67] + "…"
            t.add_row(r.stage, r.table, str(r.dates), str(r.missing), str(r.stale), ranges, str(r.games), rows, files)
        console.print(t)
        for table, causes in self.targets.items():
            stale = [(d, c) for d, c in sorted(causes.items()) if c.startswith("stale")]
            if stale:
                d, c = stale[0]
                more = f" (and {len(stale) - 1} more stale date(s))" if len(stale) > 1 else ""
                console.print(f"{table.split('.')[-1]}: {d} {c}{more}")
        for table, causes in self.frozen.items():
            console.print(f"{table.split('.')[-1]}: {len(causes)} stale date(s) kept as issued (freeze_predictions)")
        if self.gate:
            console.print(f"[bold]gate[/bold]: {self.gate.get('verdict')}")
        for n in self.notes:
            console.print(f"note: {n}")
        console.print(f"[bold]total[/bold]: {self.total_rows:,} rows expected")
        if self.jobs:
            by = self.frame.groupby("stage").bytes_processed.sum(min_count=1) if not self.frame.empty else {}
            parts = []
            for stage, n in self.jobs.items():
                b = by.get(stage) if hasattr(by, "get") else None
                parts.append(f"{stage} {n}" + ("" if b is None or pd.isna(b) else f" ({int(b) / 1e9:.2f} GB)"))
            console.print(f"[bold]BigQuery jobs[/bold] (estimate, about 1 s each): {', '.join(parts)}; "
                          f"total {sum(self.jobs.values())}")

    def _repr_html_(self) -> str:
        return self.frame.to_html(index=False)


def _open_readonly(params: RunParams) -> Warehouse:
    if params.backend == "duckdb":
        from pathlib import Path

        if not Path(params.duckdb_path).exists():
            from .errors import UsageError

            raise UsageError(f"no warehouse at {params.duckdb_path}: check duckdb_path, or build the demo with "
                             "`runbook demo --build-only`")
        return open_warehouse(params, read_only=True)
    return open_warehouse(params)


def _dry_run_bytes(wh: Warehouse, stage: str, table: str, dates: list[date], params: RunParams) -> Optional[int]:
    """Bytes a dry run of ``sql/<stage>/<table>.sql`` would process, when the backend can say
    (BigQuery's ``dry_run_bytes``; DuckDB has none). Only the parameters a file uses are sent."""
    fn = getattr(wh, "dry_run_bytes", None)
    if fn is None or not (SQL_DIR / stage / f"{table}.sql").is_file():
        return None
    from .sqlfiles import parameter_names

    sql = read_sql(f"{stage}/{table}")
    start, end = min(dates), max(dates)
    known = {"start_date": start, "end_date": end, "dates": list(dates), "all_dates": list(dates), "day": start,
             "seasons": params.season_list, "run_id": "plan", "train_start": start, "train_end": end,
             "repredict": params.repredict, **schema.table(table).lookback_parameters()}
    try:
        return int(fn(sql, {k: v for k, v in known.items() if k in parameter_names(sql)}, label=f"plan {stage}/{table}"))
    except Exception:  # a dry run is advice, not a requirement
        return None


def plan_run(params: RunParams, wh: Optional[Warehouse] = None) -> PlanResult:
    """Per stage and table: dates, games and rows a run with these params would write."""
    from .validate import run_validate

    own = wh is None
    wh = wh or _open_readonly(params)
    try:
        result = run_validate(params, wh=wh, progress=False, checks=False)  # states and completeness only
        start, end = params.date_bounds()
        expected = wh.query_file("validate/expected_games",
                                 {"start_date": start, "end_date": end, "seasons": params.season_list})
        expected["game_date"] = pd.to_datetime(expected.game_date).dt.date
        games_per_date = expected.groupby("game_date").size().to_dict()
        bucket = None
        if "load" in params.stages:
            try:
                from .bucket import Bucket

                bucket = Bucket(params.bucket)
            except Exception:
                bucket = None
        targets, frozen, skipped = planned_targets(wh, params, result.states)
        rows, notes = [], []
        for t in schema.tracked_tables():
            stage = PHASE_STAGE.get(t.phase)
            if stage not in params.stages or not params.table_selected(t.name):
                continue
            causes = targets.of(t.fqn) if t.phase != "2" else {d: lineage.Cause("missing")
                                                                for d in result.states.absent(t.name)}
            missing = sorted(causes)
            if not missing:
                continue
            statuses = [s for s in result.tables if s.table == t.name]
            present_games = sum(s.games_present for s in statuses)
            rpg = sum(s.rows for s in statuses) / present_games if present_games else None
            games = int(sum(games_per_date.get(d, 0) for d in missing))
            files = None
            if stage == "load" and bucket is not None:
                from .sources import file_path

                try:
                    files = sum(1 for d in missing if bucket.exists(file_path(t.name, d)))
                except Exception:
                    files = None
            rows.append({
                "stage": stage, "phase": t.phase, "table": t.name, "dates": len(missing),
                "missing": sum(c.kind != "stale" for c in causes.values()),  # missing, blocked, failed, requested
                "stale": sum(c.kind == "stale" for c in causes.values()),
                "first": min(missing), "last": max(missing),
                "ranges": "; ".join(range_label(*g) for g in group_dates(missing, [d for s in statuses for d in s.expected])),
                "games": games, "expected_rows": round(rpg * games) if rpg else None,
                "files_in_bucket": files,
                "bytes_processed": _dry_run_bytes(wh, stage, t.name, missing, params),
            })
            if rpg is None:
                notes.append(f"{t.name} has no rows yet: its expected row count is unknown")
        raw_missing = sum(len(result.missing_dates(t.name)) for t in schema.tracked_tables()
                          if t.phase == "2" and params.table_selected(t.name))
        gate = {}
        if "gate" in params.stages:
            unfillable = [r for r in rows if r["stage"] == "load" and r["files_in_bucket"] is not None
                          and r["files_in_bucket"] < r["dates"]]
            gate = {"raw_dates_missing_now": raw_missing,
                    "verdict": ("would pass if load fills every missing raw date" if not unfillable else
                                "would block: " + ", ".join(f"{r['table']} has {r['dates'] - r['files_in_bucket']} date(s) "
                                                              "with no file in the bucket" for r in unfillable))}
        scanned = [r["bytes_processed"] for r in rows if r["bytes_processed"] is not None]
        if scanned and hasattr(wh, "check_plan_budget"):
            try:
                wh.check_plan_budget(int(sum(scanned)))
            except Exception as e:  # over max_plan_bytes: the plan says so, the run would refuse
                notes.append(str(e))
        frame = pd.DataFrame(rows, columns=COLUMNS)
        order = {s: i for i, s in enumerate(WRITING_STAGES)}
        frame = frame.sort_values("stage", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
        frame["expected_rows"] = frame.expected_rows.astype("Int64")
        frame["files_in_bucket"] = frame.files_in_bucket.astype("Int64")
        frame["bytes_processed"] = frame.bytes_processed.astype("Int64")
        jobs = _estimate_jobs(params, rows, targets) if params.backend == "bigquery" else {}
        as_json = {t: {d.isoformat(): c.text(t) for d, c in sorted(targets.of(t).items())}
                   for t in targets.dates if targets.of(t) and schema.table(t).phase != "2"}
        program = {stage: stage_program(params, targets, stage, frozen, skipped)
                   for stage in CHUNKED_STAGES if stage in params.stages}
        chunks = {stage: [[c[0], c[-1], len(c)] for c in p["chunks"]] for stage, p in program.items()}
        return PlanResult(frame=frame, notes=notes, gate=gate, targets=as_json, jobs=jobs, chunks=chunks,
                          frozen={t: {d.isoformat(): c.text(t) for d, c in sorted(cs.items())}
                                  for t, cs in frozen.items() if cs},
                          program=program, states=result.states.to_json())
    finally:
        if own:
            wh.close()


def _estimate_jobs(params: RunParams, rows: list[dict], targets: lineage.Targets) -> dict[str, int]:
    """Jobs per stage from the plan's dates (``nbcore.jobs_estimate``)."""
    def dates_of(stage: str) -> list[date]:
        return _stage_dates(params, targets, stage)

    load = [r for r in rows if r["stage"] == "load"]
    schedule = next((r for r in load if r["table"] == "nbac_schedule"), None)
    derive_stale = any(c.kind == "stale" for t in schema.tracked_tables() if PHASE_STAGE.get(t.phase) == "derive"
                       for c in targets.of(t.fqn).values())
    return estimate_jobs(
        stages=[s for s in (*WRITING_STAGES, "gate") if s in params.stages], chunk_days=params.chunk_days,
        raw_dates={r["table"]: r["dates"] for r in load if r["table"] != "nbac_schedule"},
        rows_per_date={r["table"]: (r["expected_rows"] or 0) / r["dates"] for r in load if r["dates"]},
        seasons=len(params.season_list), schedule_seasons=len(params.season_list) if schedule is not None else 0,
        derive_dates=dates_of("derive"), derive_stale=derive_stale, predict_dates=dates_of("predict"),
        grade_dates=dates_of("grade"), checks=not params.backfill_mode and params.strict_mode,
        season_of=targets.season_of)
