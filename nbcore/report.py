"""The completion report of a run, read from its archive (``runs/<run_id>/``).

Everything here reads files the run left behind — the manifest, the before/after validate
snapshots, ``failures.csv`` and ``stages/*.json`` — so a report can be rebuilt for any run,
on any machine, without touching the warehouse. ``notebooks/06_report.ipynb`` only calls
these functions; the runbook exports it to ``report.html`` without code, and
``write_summary`` writes ``summary.md`` for a ticket.

Every function returns a DataFrame or a matplotlib Figure and copes with a run that
stopped early (missing snapshot, no grade stage, ...): it returns an empty frame.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from . import schema

PHASE_ORDER = {p: i for i, p in enumerate(schema.PHASES)}
# which runbook stage writes each phase (the reason a date is closed or still open)
PHASE_STAGE = {"2": "load", "3": "derive", "4": "derive", "5": "predict", "5B": "grade"}


@dataclass
class RunData:
    """One run's archive, loaded."""

    run_dir: Path
    manifest: dict
    before: Optional[dict]
    after: Optional[dict]
    failures: pd.DataFrame
    stages: dict[str, dict] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.manifest.get("run_id", self.run_dir.name)

    def step(self, name: str) -> Optional[dict]:
        return next((s for s in self.manifest.get("stages", []) if s.get("name") == name), None)

    def record(self, name: str) -> dict:
        """A stage's own record: the manifest's copy, else stages/<name>.json."""
        step = self.step(name)
        if step and step.get("record"):
            return step["record"]
        return self.stages.get(name, {})


def load_run(run_dir: str | Path) -> RunData:
    run_dir = Path(run_dir)

    def read(name: str) -> Optional[dict]:
        p = run_dir / name
        try:
            return json.loads(p.read_text()) if p.exists() else None
        except ValueError:
            return None

    stages = {}
    for p in sorted((run_dir / "stages").glob("*.json")):
        try:
            stages[p.stem] = json.loads(p.read_text())
        except ValueError:
            pass
    failures = pd.DataFrame()
    if (run_dir / "failures.csv").exists():
        try:
            failures = pd.read_csv(run_dir / "failures.csv")
        except (pd.errors.EmptyDataError, ValueError):
            failures = pd.DataFrame()
    return RunData(run_dir=run_dir, manifest=read("manifest.json") or {}, before=read("validate_before.json"),
                   after=read("validate_after.json"), failures=failures, stages=stages)


def latest_run(archive_dir: str | Path) -> Optional[Path]:
    """The newest run folder holding a manifest (for the report notebook run on its own)."""
    base = Path(archive_dir)
    runs = sorted((d for d in base.iterdir() if (d / "manifest.json").exists()), key=lambda d: d.name) if base.is_dir() else []
    return runs[-1] if runs else None


# -- header ------------------------------------------------------------------------------------
def run_header(run: RunData) -> pd.DataFrame:
    """Who/what/when of the run, as a two-column table."""
    m = run.manifest
    p = m.get("params") or {}
    seasons = p.get("seasons") or []
    scope = f"{p.get('start_date') or '…'} → {p.get('end_date') or '…'}" if (p.get("start_date") or p.get("end_date")) \
        else (f"seasons {', '.join(str(s) for s in seasons)}" if seasons else "all seasons")
    steps = [s for s in m.get("stages", []) if s.get("name") != "report"]
    status = m.get("status", "?")
    if status == "running" and steps and all(s.get("status") in ("succeeded", "skipped") for s in steps):
        status = "succeeded (every stage before this report)"
    rows = [
        ("run", run.run_id), ("name", m.get("run_name")), ("status", status),
        ("stopped at", m.get("stopped_at") and f"{m.get('stopped_at')}: {m.get('reason')}"),
        ("scope", scope), ("backend", m.get("warehouse") or m.get("backend")),
        ("backfill mode", p.get("backfill_mode")), ("started", m.get("started_at")), ("ended", m.get("ended_at")),
        ("runbook commit", (m.get("git_commit") or "?")[:12] + (" (modified)" if m.get("git_dirty") else "")),
        ("params hash", m.get("params_hash")), ("resumed", len(m.get("resumes") or []) or None),
    ]
    return pd.DataFrame([(k, v) for k, v in rows if v not in (None, "")], columns=["", "value"]).set_index("")


# -- completeness matrices -------------------------------------------------------------------
def _snapshot_frame(snapshot: Optional[dict]) -> pd.DataFrame:
    cols = ["phase", "table", "season", "expected", "present", "missing", "rows", "missing_dates"]
    if not snapshot:
        return pd.DataFrame(columns=cols)
    rows = [{
        "phase": str(t["phase"]), "table": t["table"], "season": int(t["season_year"]),
        "expected": int(t["expected_dates"]), "present": int(t["present_dates"]),
        "missing": len(t.get("missing_dates") or []), "rows": int(t.get("rows") or 0),
        "missing_dates": [date.fromisoformat(d) for d in t.get("missing_dates") or []],
    } for t in snapshot.get("tables", [])]
    return pd.DataFrame(rows, columns=cols)


def _table_order(frame: pd.DataFrame) -> list[tuple[str, str]]:
    order = {t.name: i for i, t in enumerate(schema.all_tables())}
    keys = frame[["phase", "table"]].drop_duplicates()
    return sorted(map(tuple, keys.to_numpy()), key=lambda k: (PHASE_ORDER.get(k[0], 99), order.get(k[1], 99)))


def completeness_matrix(snapshot: Optional[dict]) -> pd.DataFrame:
    """present/expected game dates: (phase, table) rows x season columns, plus overall %."""
    f = _snapshot_frame(snapshot)
    if f.empty:
        return pd.DataFrame()
    f["cell"] = f.present.astype(str) + "/" + f.expected.astype(str)
    out = f.pivot_table(index=["phase", "table"], columns="season", values="cell", aggfunc="first")
    tot = f.groupby(["phase", "table"])[["present", "expected"]].sum()
    out["complete %"] = (100 * tot.present / tot.expected.where(tot.expected > 0)).round(1).fillna(100.0)
    out.columns = [f"{c}-{(int(c) + 1) % 100:02d}" if isinstance(c, (int, float)) else c for c in out.columns]
    return out.reindex(_table_order(f))


def before_after_matrix(run: RunData) -> pd.DataFrame:
    """The before and after matrices side by side (column groups ``before`` / ``after``)."""
    before, after = completeness_matrix(run.before), completeness_matrix(run.after)
    if before.empty and after.empty:
        return pd.DataFrame()
    parts = {k: v for k, v in (("before", before), ("after", after)) if not v.empty}
    return pd.concat(parts, axis=1)


def phase_summary(run: RunData) -> pd.DataFrame:
    """% of expected table-dates present per phase, before and after."""
    out = {}
    for label, snap in (("before", run.before), ("after", run.after)):
        f = _snapshot_frame(snap)
        if f.empty:
            continue
        g = f.groupby("phase")[["present", "expected"]].sum()
        out[f"{label} %"] = (100 * g.present / g.expected.where(g.expected > 0)).round(2).fillna(100.0)
        out[f"missing {label}"] = g.expected - g.present
    if not out:
        return pd.DataFrame()
    frame = pd.DataFrame(out)
    return frame.reindex(sorted(frame.index, key=lambda p: PHASE_ORDER.get(p, 99)))


def pct_pivot(snapshot: Optional[dict]) -> pd.DataFrame:
    """% complete, "phase · table" rows x season columns (what the heatmap shows)."""
    f = _snapshot_frame(snapshot)
    if f.empty:
        return pd.DataFrame()
    f["pct"] = 100 * f.present / f.expected.where(f.expected > 0)
    f["label"] = f.phase + " · " + f.table
    order = [f"{p} · {t}" for p, t in _table_order(f)]
    return f.pivot(index="label", columns="season", values="pct").fillna(100.0).reindex(order)


def heatmaps(run: RunData):
    """Before and after heatmaps side by side (a matplotlib Figure)."""
    import matplotlib.pyplot as plt

    from .charts import completeness_heatmap

    pivots = [(label, pct_pivot(snap)) for label, snap in (("before", run.before), ("after", run.after))]
    pivots = [(label, p) for label, p in pivots if not p.empty]
    if not pivots:
        return None
    n_rows = max(len(p) for _, p in pivots)
    n_cols = max(p.shape[1] for _, p in pivots)
    fig, axes = plt.subplots(1, len(pivots), figsize=(len(pivots) * (1.3 * max(3, n_cols) + 4.5), 0.36 * max(4, n_rows) + 1.6),
                             squeeze=False)
    for ax, (label, p) in zip(axes[0], pivots):
        completeness_heatmap(p, ax=ax, title=f"{label}: % of expected game dates present")
    for ax in axes[0][1:]:
        ax.set_yticklabels([])
    fig.tight_layout()
    return fig


# -- dates closed / still open ------------------------------------------------------------------
def group_dates(dates: list[date], max_gap_days: int = 3) -> list[tuple[date, date, int]]:
    """Runs of dates no more than ``max_gap_days`` apart (off days don't split a playoff range)."""
    out: list[tuple[date, date, int]] = []
    for d in sorted(set(dates)):
        if out and (d - out[-1][1]) <= timedelta(days=max_gap_days):
            out[-1] = (out[-1][0], d, out[-1][2] + 1)
        else:
            out.append((d, d, 1))
    return out


def range_label(first: date, last: date, n: int) -> str:
    return first.isoformat() if n == 1 else f"{first} → {last} ({n} dates)"


def _missing_sets(snapshot: Optional[dict]) -> dict[tuple[str, str, int], set[date]]:
    f = _snapshot_frame(snapshot)
    return {(r.phase, r.table, r.season): set(r.missing_dates) for r in f.itertuples(index=False)}


def dates_closed(run: RunData) -> pd.DataFrame:
    """Per table and season: dates missing before the run and present after, grouped into ranges."""
    cols = ["stage", "phase", "table", "season", "dates closed", "ranges"]
    before, after = _missing_sets(run.before), _missing_sets(run.after)
    rows = []
    for key, missing in before.items():
        if key not in after:
            continue
        closed = sorted(missing - after[key])
        if not closed:
            continue
        phase, table, season = key
        rows.append({"stage": PHASE_STAGE.get(phase, "?"), "phase": phase, "table": table, "season": season,
                     "dates closed": len(closed),
                     "ranges": "; ".join(range_label(*g) for g in group_dates(closed))})
    frame = pd.DataFrame(rows, columns=cols)
    return _sort(frame)


def closed_by_stage(run: RunData) -> pd.DataFrame:
    """How many table-dates each stage closed, and over which game dates."""
    before, after = _missing_sets(run.before), _missing_sets(run.after)
    per_stage: dict[str, dict[str, Any]] = {}
    for key, missing in before.items():
        if key not in after:
            continue
        closed = missing - after[key]
        if not closed:
            continue
        s = per_stage.setdefault(PHASE_STAGE.get(key[0], "?"), {"tables": set(), "table-dates": 0, "dates": set()})
        s["tables"].add(key[1])
        s["table-dates"] += len(closed)
        s["dates"] |= closed
    order = ["load", "derive", "predict", "grade"]
    rows = [{"stage": st, "tables": len(v["tables"]), "table-dates closed": v["table-dates"],
             "game dates": len(v["dates"]), "first": min(v["dates"]), "last": max(v["dates"])}
            for st, v in sorted(per_stage.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9)]
    return pd.DataFrame(rows, columns=["stage", "tables", "table-dates closed", "game dates", "first", "last"])


def _resolutions(run: RunData):
    """The run's failures and waivers as they stand now (``nbcore.resolutions``), computed once."""
    res = run.__dict__.get("_resolutions")
    if res is None:
        from .resolutions import RunResolutions

        res = run.__dict__["_resolutions"] = RunResolutions(run.run_dir, run.failures, run.record("gate"), run.record("load"))
    return res


def _failed_dates(run: RunData) -> dict[tuple[str, date], str]:
    """(source, game date) -> reason, for load failures nothing has fixed or waived since."""
    return _resolutions(run).open_by_pair()


def _gate_override(run: RunData) -> Optional[str]:
    """The written reason, when the gate failed and was overridden (None otherwise)."""
    rec = run.record("gate")
    if not rec:
        return None
    overridden = rec.get("overridden") is True or str(rec.get("status", "")).lower() == "overridden" \
        or str(rec.get("verdict", "")).lower() == "overridden"
    reason = rec.get("override_reason") or (run.manifest.get("params") or {}).get("gate_override_reason")
    if isinstance(rec.get("override"), dict):
        overridden = overridden or bool(rec["override"].get("applied") or rec["override"].get("used"))
        reason = reason or rec["override"].get("reason")
    return str(reason).strip() if overridden and reason else None


def _waived(run: RunData) -> dict[tuple[str, date], str]:
    """(raw source, date) -> "reason (approved by who)": the run's waiver file now, and what its stages recorded."""
    return _resolutions(run).waived


def _raw_ancestors(table: str) -> list[str]:
    try:
        t = schema.table(table)
    except KeyError:
        return []
    if t.phase == "2":
        return [t.name]
    out, stack, seen = [], list(t.upstream), set()
    while stack:
        u = schema.table(stack.pop())
        if u.fqn in seen:
            continue
        seen.add(u.fqn)
        if u.phase == "2":
            out.append(u.name)
        stack.extend(u.upstream)
    return out


def dates_waived(run: RunData) -> pd.DataFrame:
    """Dates not present after the run because a waiver covers them: reviewed, not open.

    From the after snapshot (validate lists waived dates apart, with source, reason and
    approver), else the dates still missing whose raw source is waived now.
    """
    cols = ["phase", "table", "season", "dates", "ranges", "reason"]
    rows = []
    for t in (run.after or {}).get("tables", []):
        reasons: dict[str, list[date]] = {}
        for d, why in (t.get("waived_dates") or {}).items():
            src, _, text = str(why).partition(": ")
            reasons.setdefault(f"waived ({src}): {text}", []).append(date.fromisoformat(d))
        for reason, ds in reasons.items():
            rows.append({"phase": str(t["phase"]), "table": t["table"], "season": int(t["season_year"]), "dates": len(ds),
                         "ranges": "; ".join(range_label(*g) for g in group_dates(sorted(ds))), "reason": reason})
    frame = pd.DataFrame(rows, columns=cols)
    legacy = dates_open(run, waived_only=True)
    return _sort(pd.concat([frame, legacy], ignore_index=True)) if len(legacy) else _sort(frame)


def dates_open(run: RunData, waived_only: bool = False) -> pd.DataFrame:
    """Dates still missing after the run, grouped by table and reason (waived dates: ``dates_waived``).

    Reasons, first that applies: a raw source of the table is waived on that date; the
    date's load failed (failures.csv, retries that succeeded left out); the gate was
    overridden while raw was incomplete; the stage that writes the table did not run or
    failed; an upstream table still misses the date; otherwise unexplained (ask
    ``runbook why TABLE DATE``).
    """
    cols = ["phase", "table", "season", "dates", "ranges", "reason"]
    after = _missing_sets(run.after)
    if not after:
        return pd.DataFrame(columns=cols)
    by_table: dict[str, set[date]] = {}
    for (phase, table, season), missing in after.items():
        by_table.setdefault(table, set()).update(missing)
    failed = _failed_dates(run)
    override = _gate_override(run)
    waived = _waived(run)
    required = (run.manifest.get("params") or {}).get("required_sources") or []
    status = {s.get("stage"): s.get("status") for s in run.manifest.get("stages", []) if s.get("name") != "validate_after"}
    rows = []
    for (phase, table, season), missing in after.items():
        if not missing:
            continue
        reasons: dict[str, list[date]] = {}
        try:
            upstream = [u.split(".")[-1] for u in schema.table(table).upstream]
        except KeyError:
            upstream = []
        stage = PHASE_STAGE.get(phase)
        # derive skips every date a required source is waived on, so those waive every derived table
        sources = _raw_ancestors(table) + ([s for s in required if s not in _raw_ancestors(table)] if phase != "2" else [])
        for d in sorted(missing):
            w = next(((src, waived[(src, d)]) for src in sources if (src, d) in waived), None)
            if (w is not None) != waived_only:
                continue  # waived dates are reviewed, not open: listed by dates_waived
            f = next((failed[(src, d)] for src in sources if (src, d) in failed), None)
            if w is not None:
                reason = f"waived ({w[0]}): {w[1]}"
            elif f is not None:  # the root cause, for raw and everything downstream of it
                reason = f
            elif phase == "2" and override:
                reason = f"gate overridden: {override}"
            elif stage and status.get(stage) not in ("succeeded", None):
                reason = f"stage {stage} {status.get(stage)}"
            elif stage and stage not in status:
                reason = f"stage {stage} not part of this run"
            else:
                gaps = [u for u in upstream if d in by_table.get(u, set())]
                reason = f"upstream missing: {', '.join(gaps)}" if gaps else f"not filled; run `runbook why {table} {d}`"
            reasons.setdefault(reason, []).append(d)
        for reason, ds in reasons.items():
            rows.append({"phase": phase, "table": table, "season": season, "dates": len(ds),
                         "ranges": "; ".join(range_label(*g) for g in group_dates(ds)), "reason": reason})
    return _sort(pd.DataFrame(rows, columns=cols))


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    order = {t.name: i for i, t in enumerate(schema.all_tables())}
    key = frame.phase.map(PHASE_ORDER).fillna(99) * 1000 + frame.table.map(order).fillna(99)
    return frame.assign(_k=key).sort_values(["_k", "season"], kind="stable").drop(columns="_k").reset_index(drop=True)


# -- failures, retries, gate, grading -------------------------------------------------------------
def failures(run: RunData) -> pd.DataFrame:
    """Every failure the load stage recorded (failures.csv), with its status now: open, resolved
    (a later load of that source and date succeeded, per processor_run_history) or waived."""
    return _resolutions(run).failures.copy()


def retries(run: RunData) -> pd.DataFrame:
    """Retries and failures each stage reported about itself."""
    rows = []
    for s in run.manifest.get("stages", []):
        rec = s.get("record") or {}
        r, f = rec.get("retries"), rec.get("failures")
        if isinstance(r, list):
            r = len(r)
        if isinstance(f, list):
            f = len(f)
        if r or f:
            rows.append({"stage": s.get("name"), "retries": r or 0, "failures": f or 0,
                         "recovered": rec.get("recovered")})
    return pd.DataFrame(rows, columns=["stage", "retries", "failures", "recovered"])


def gate_verdict(run: RunData) -> pd.DataFrame:
    """The gate's verdict, override reason and what it found missing (from its stage record)."""
    rec = run.record("gate")
    if not rec:
        return pd.DataFrame(columns=["", "value"]).set_index("")
    rows = []
    for k, v in rec.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            rows.append((k, v))
        elif isinstance(v, dict) and all(isinstance(x, (str, int, float, bool)) or x is None for x in v.values()):
            rows.append((k, ", ".join(f"{a}: {b}" for a, b in v.items()) or "—"))
        elif isinstance(v, list):
            if not v:
                rows.append((k, "none"))
            else:
                rows.append((k, f"{len(v)} item(s)" if isinstance(v[0], dict) else ", ".join(map(str, v[:12])) + (" …" if len(v) > 12 else "")))
    override = _gate_override(run)
    if override and not any(k == "override reason" for k, _ in rows):
        rows.insert(1, ("override reason", override))
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


def gate_checks(run: RunData) -> pd.DataFrame:
    """The gate's individual checks, when it recorded them as a list of rows."""
    rec = run.record("gate")
    for key in ("checks", "missing", "verdicts"):
        v = rec.get(key)
        if isinstance(v, list) and v and isinstance(v[0], dict):
            return pd.DataFrame(v)
    return pd.DataFrame()


GRADING_CSV = "grading_metrics.csv"


def grading_metrics(run: RunData, params=None, save: bool = False) -> pd.DataFrame:
    """MAE, bias, hit rate per system and season.

    From the archive's ``grading_metrics.csv`` when present; else, given ``params``, measured
    read-only on the warehouse (``nbcore.grade.accuracy_metrics``) and saved into the archive so
    the report can be rebuilt without it (``save``, when the report is part of the run); else the
    per-system metrics the grade stage recorded.
    """
    csv_path = run.run_dir / GRADING_CSV
    if csv_path.exists():
        return pd.read_csv(csv_path)
    if params is not None:
        frame = _measure_grading(params)
        if frame is not None and not frame.empty:
            if save and (run.run_dir / "manifest.json").exists():
                frame.to_csv(csv_path, index=False)
            return frame
    rec = run.record("grade")
    mbs = rec.get("metrics_by_system")
    if isinstance(mbs, dict) and mbs:
        frame = pd.DataFrame.from_dict(mbs, orient="index").rename_axis("system_id").reset_index()
        return frame.drop(columns=[c for c in ("hit_rate_ci",) if c in frame.columns])
    for key in ("metrics", "by_system_season", "metrics_by_system_season", "by_system"):
        v = rec.get(key)
        if isinstance(v, list) and v and isinstance(v[0], dict):
            return pd.DataFrame(v)
        if isinstance(v, dict) and v:
            try:
                frame = pd.DataFrame(v)
                return frame if frame.ndim == 2 else pd.DataFrame()
            except ValueError:
                continue
    return pd.DataFrame()


def _measure_grading(params) -> Optional[pd.DataFrame]:
    try:
        with warnings.catch_warnings():  # tqdm.auto's notebook warning must not land in the report
            warnings.simplefilter("ignore")
            from .grade import accuracy_metrics
        from .warehouse import open_warehouse

        if params.backend == "duckdb" and not Path(params.duckdb_path).exists():
            return None
        kwargs = {"read_only": True} if params.backend == "duckdb" else {}
        with open_warehouse(params, **kwargs) as wh:
            frame = accuracy_metrics(wh, params, by=["system_id", "season_year"])
    except Exception:  # the report still renders without metrics
        return None
    keep = [c for c in ("system_id", "season_year", "graded", "voided", "mae", "bias", "rmse", "within_3_pct",
                        "calls", "hit_rate", "hit_rate_low", "hit_rate_high", "pushes", "passes") if c in frame.columns]
    frame = frame[keep].copy()
    for c in ("mae", "bias", "rmse", "within_3_pct", "hit_rate", "hit_rate_low", "hit_rate_high"):
        if c in frame.columns:
            frame[c] = pd.to_numeric(frame[c]).round(3)
    return frame


def rows_written(run: RunData) -> pd.DataFrame:
    """Rows each stage wrote per table (from the stage records)."""
    rows = []
    for s in run.manifest.get("stages", []):
        rw = (s.get("record") or {}).get("rows_written")
        if isinstance(rw, dict):
            rows += [{"stage": s.get("name"), "table": t, "rows": n} for t, n in rw.items()]
    return pd.DataFrame(rows, columns=["stage", "table", "rows"])


# -- timeline -------------------------------------------------------------------------------------
def timeline(run: RunData) -> pd.DataFrame:
    """Each step: status, start offset from the run's start, seconds, kernel overhead, error."""
    cols = ["step", "status", "start_s", "seconds", "kernel_overhead_s", "error"]
    steps = run.manifest.get("stages", [])
    starts = [s.get("started_at") for s in steps if s.get("started_at")]
    if not starts:
        return pd.DataFrame(columns=cols)
    t0 = min(datetime.fromisoformat(s) for s in starts)
    rows = []
    for s in steps:
        st = datetime.fromisoformat(s["started_at"]) if s.get("started_at") else None
        rows.append({"step": s.get("name"), "status": s.get("status"),
                     "start_s": (st - t0).total_seconds() if st else None, "seconds": s.get("seconds"),
                     "kernel_overhead_s": s.get("kernel_overhead_s"), "error": s.get("error") if s.get("status") != "skipped" else None,
                     "bigquery_jobs": (s.get("bigquery") or {}).get("jobs"), "bytes_billed": s.get("bytes_billed")})
    frame = pd.DataFrame(rows, columns=cols + ["bigquery_jobs", "bytes_billed"])
    if frame.bigquery_jobs.isna().all() and frame.bytes_billed.isna().all():  # not a BigQuery run
        frame = frame[cols]
    return frame


STATUS_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "blocked": "#ef6c00", "skipped": "#9e9e9e",
                 "running": "#1565c0", "pending": "#bdbdbd"}


def timeline_chart(run: RunData):
    """Horizontal bars: when each step ran and how long it took, colored by status."""
    import matplotlib.pyplot as plt

    t = timeline(run)
    t = t[t.start_s.notna()]
    if t.empty:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(t) + 1.2))
    y = list(range(len(t)))[::-1]
    ax.barh(y, t.seconds.fillna(0).clip(lower=0.05), left=t.start_s, color=[STATUS_COLORS.get(s, "#777") for s in t.status])
    ax.set_yticks(y, [f"{r.step} ({r.status})" for r in t.itertuples()])
    for yy, r in zip(y, t.itertuples()):
        ax.text(r.start_s + (r.seconds or 0) + 0.2, yy, f"{(r.seconds or 0):.1f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds since the run started")
    ax.set_title("Stage timeline")
    fig.tight_layout()
    return fig


def display_options() -> None:
    """Show long date-range labels and reasons whole in the report."""
    pd.set_option("display.max_colwidth", 400)
    pd.set_option("display.max_rows", 500)
    pd.set_option("display.precision", 3)
    warnings.filterwarnings("ignore", message=".*IProgress not found.*")


def or_note(frame, note: str):
    """The frame (its first column as the index instead of 0..n), or a one-line note when it is
    empty, so the report says *why* a section is blank."""
    if frame is not None and not getattr(frame, "empty", False):
        if isinstance(frame, pd.DataFrame) and isinstance(frame.index, pd.RangeIndex) and frame.shape[1] > 1:
            return frame.set_index(frame.columns[0])
        return frame
    from IPython.display import Markdown

    return Markdown(f"*{note}*")


# -- summary.md -----------------------------------------------------------------------------------
def _md_table(frame: pd.DataFrame, index: bool = True) -> str:
    f = frame.reset_index() if index else frame
    f = f.astype(object).where(f.notna(), "")
    head = "| " + " | ".join(str(c) for c in f.columns) + " |"
    sep = "|" + "|".join("---" for _ in f.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in f.to_numpy()]
    return "\n".join([head, sep, *body])


def summary_markdown(run: RunData) -> str:
    """A short summary to paste into a ticket."""
    m = run.manifest
    lines = [f"# Backfill run `{run.run_id}` — {m.get('status', '?')}", ""]
    h = run_header(run)
    lines += [f"- **{k}**: {v}" for k, v in h["value"].items() if k not in ("run",)]
    dur = m.get("seconds")
    if dur is not None:
        lines.append(f"- **duration**: {dur:.0f} s")
    ps = phase_summary(run)
    if not ps.empty:
        lines += ["", "## Completeness by phase (% of expected table-dates present)", "", _md_table(ps.rename_axis("phase"))]
    cs = closed_by_stage(run)
    if not cs.empty:
        lines += ["", "## Dates closed", "", _md_table(cs, index=False)]
    op = dates_open(run)
    lines += ["", "## Still open", ""]
    lines += [_md_table(op[["table", "season", "dates", "ranges", "reason"]], index=False)] if not op.empty else \
        (["nothing: every expected date is present in every table"] if run.after else ["unknown: no after snapshot (the run stopped early)"])
    steps = timeline(run)
    if not steps.empty:
        lines += ["", "## Stages", "", _md_table(steps[["step", "status", "seconds", "error"]], index=False)]
    wv = dates_waived(run)
    if not wv.empty:
        lines += ["", "## Waived (reviewed, not open)", "", _md_table(wv[["table", "season", "dates", "ranges", "reason"]], index=False)]
    fl = failures(run)
    if not fl.empty:
        n = fl.status.value_counts()
        lines += ["", f"## Failures ({len(fl)} failed attempts: {int(n.get('resolved', 0))} resolved, "
                      f"{int(n.get('waived', 0))} waived, {int(n.get('open', 0))} open)", "",
                  _md_table(fl.head(20), index=False)]
    gate = _gate_override(run)
    if gate:
        lines += ["", f"**Gate override**: {gate}"]
    lines += ["", f"Report: `{run.run_dir / 'report.html'}`", ""]
    return "\n".join(lines)


def write_summary(run_dir: str | Path) -> Path:
    run = load_run(run_dir)
    path = Path(run_dir) / "summary.md"
    path.write_text(summary_markdown(run), encoding="utf-8")
    return path
