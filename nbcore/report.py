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
import os
import re
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from . import schema
from .validate import date_ranges

PHASE_ORDER = {p: i for i, p in enumerate(schema.PHASES)}
# which runbook stage writes each phase (the reason a date is closed or still open)
from .record import parse_record
from .stages import PHASE_STAGE, STEP_STAGE  # the registry
from .shell import runbook as runbook_command


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
        """A step's typed record (``nbcore.record``) as JSON: the manifest's copy, else
        stages/<name>.json; {} when the step wrote none. Every field of the stage's record type
        is present (with its default), so readers index it by the contract's names."""
        step = self.step(name)
        raw = step["record"] if step and step.get("record") else self.stages.get(name)
        if not raw:
            return {}
        stage = (step or {}).get("stage") or STEP_STAGE.get(name, name)
        return parse_record(stage, raw, f"stages/{name}.json").to_json()


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
    """The newest runbook run (a manifest not of a stage run by hand), for the report notebook run on its own."""
    base = Path(archive_dir)
    runs = sorted((d for d in base.iterdir() if (d / "manifest.json").exists() and not _interactive(d)),
                  key=lambda d: d.name) if base.is_dir() else []
    return runs[-1] if runs else None


def _interactive(run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / "manifest.json").read_text()).get("kind") == "interactive"
    except (OSError, ValueError):
        return False


# -- plain words for values -------------------------------------------------------------------------
def season_label(season: Any) -> str:
    """2021 -> "2021-22" (seasons are named by the year they start)."""
    try:
        y = int(season)
    except (TypeError, ValueError):
        return str(season)
    return f"{y}-{(y + 1) % 100:02d}"


def pct_label(pct: Optional[float], digits: int = 1) -> str:
    """A share as a percentage that never rounds an incomplete value up to 100 %.

    99.96 % shows as "99.9 %", so a reader never sees "100 %" for a table with a hole."""
    if pct is None or pct != pct:
        return "—"
    if pct >= 100:
        return "100 %"
    scale = 10 ** digits
    return f"{int(pct * scale) / scale:.{digits}f} %"


def rate_label(rate: Optional[float], digits: int = 1) -> str:
    """0.598 -> "59.8 %"."""
    if rate is None or rate != rate:
        return "—"
    return f"{100 * float(rate):.{digits}f} %"


def count_label(n: Any) -> str:
    """1233 -> "1,233"; a missing count shows as a dash, never as None or NaN."""
    if n is None or (isinstance(n, float) and n != n):
        return "—"
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return str(n)


def plural(n: int, word: str, many: Optional[str] = None) -> str:
    """"1 failed attempt", "2 failed attempts"."""
    return f"{count_label(n)} {word if n == 1 else (many or word + 's')}"


def seconds_label(s: Any) -> str:
    if s is None or (isinstance(s, float) and s != s):
        return "—"
    s = float(s)
    return f"{s:.1f} s" if s < 90 else f"{int(s // 60)} min {int(round(s % 60)):02d} s"


def yes_no(v: Any) -> str:
    if isinstance(v, str):
        v = v.strip().lower() in ("true", "1", "yes")
    return "yes" if v else "no"


_ABS_PATH = re.compile(r"""(?<![\w.:/~])(/(?:[^\s:;,'"()<>|`/]+/)+[^\s:;,'"()<>|`]*)""")


def display_path(path: Any, run_dir: Optional[Path] = None) -> str:
    """A path as a shared report shows it: relative to the project when inside it, else relative
    to the run archive (``../../warehouse.duckdb``); never the absolute path of the machine.

    ``duckdb:/abs/file.duckdb`` keeps its ``duckdb:`` prefix; ``gs://`` URLs are left alone."""
    if path is None:
        return "—"
    text = str(path)
    prefix = ""
    m = re.match(r"^([a-z]+):(/[^/].*)$", text)
    if m:
        prefix, text = m.group(1) + ":", m.group(2)
    if not text.startswith("/"):
        return prefix + text
    from .params import PROJECT_ROOT

    p = Path(text)
    for base in (PROJECT_ROOT, ):
        try:
            return prefix + str(p.relative_to(base))
        except ValueError:
            pass
    if run_dir is not None:
        try:
            return prefix + os.path.relpath(p, Path(run_dir).resolve())
        except ValueError:
            pass
    return prefix + p.name


def strip_paths(text: Any, run_dir: Optional[Path] = None) -> str:
    """Free text (a reason, an error) with every absolute path made relative (``display_path``)."""
    if text is None or (isinstance(text, float) and text != text):
        return ""
    return _ABS_PATH.sub(lambda m: display_path(m.group(1), run_dir), str(text))


# -- header ------------------------------------------------------------------------------------
def _status(run: RunData) -> str:
    m = run.manifest
    steps = [s for s in m.get("stages", []) if s.get("name") != "report"]
    status = m.get("status") or "unknown"
    if status == "running" and steps and all(s.get("status") in ("succeeded", "skipped") for s in steps):
        return "succeeded"
    return status


def run_header(run: RunData) -> pd.DataFrame:
    """Who/what/when of the run, as a two-column table of display strings (paths relative)."""
    m = run.manifest
    p = m.get("params") or {}
    seasons = p.get("seasons") or []
    scope = f"{p.get('start_date') or '…'} → {p.get('end_date') or '…'}" if (p.get("start_date") or p.get("end_date")) \
        else (f"seasons {', '.join(season_label(s) for s in seasons)}" if seasons else "all seasons")
    resumes = len(m.get("resumes") or [])
    commit = m.get("git_commit")
    tries = attempts(run)
    ended = _dt_label(tries.ended_at.iloc[-1])[:16] + " UTC" if len(tries) and pd.notna(tries.ended_at.iloc[-1]) else None
    rows = [
        ("run", run.run_id), ("name", m.get("run_name")), ("status", _status(run)),
        ("stopped at", m.get("stopped_at") and f"{m.get('stopped_at')}: {strip_paths(m.get('reason'), run.run_dir)}"),
        ("scope", scope), ("warehouse", display_path(m.get("warehouse") or m.get("backend"), run.run_dir)),
        ("backfill mode", "on (defensive checks skipped)" if p.get("backfill_mode") else None),
        ("started", _time_label(m.get("started_at"))), ("ended", ended or _time_label(m.get("ended_at"))),
        ("run time", run_time_label(run)),
        ("runbook commit", commit and commit[:12] + (" (with local changes)" if m.get("git_dirty") else "")),
        ("params hash", m.get("params_hash")), ("resumed", plural(resumes, "time") if resumes else None),
    ]
    return pd.DataFrame([(k, v) for k, v in rows if v not in (None, "")], columns=["", "value"]).set_index("")


def _time_label(ts: Optional[str]) -> Optional[str]:
    """ISO timestamp -> "2026-11-29 05:53 UTC"."""
    if not ts:
        return None
    try:
        t = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    return t.strftime("%Y-%m-%d %H:%M") + (" UTC" if t.utcoffset() == timedelta(0) else "")


# -- run time over attempts -------------------------------------------------------------------------
# A run that stopped and was resumed is one run in one archive, worked on in several attempts: the
# manifest's ``started_at`` and each ``resumes[].at`` start one, and ``run.log`` (driver and stage
# lines, timestamped) shows how long each went on. Its run time is the sum of the attempts, never
# the first attempt's duration nor the wall clock across the hours it sat stopped.
_LOG_END = re.compile(r"^run (\w+) \(exit -?\d+\)")
_LOG_START = re.compile(r"^(run started|resume from)\b")


def _ts(value: Any) -> Optional[datetime]:
    """An ISO timestamp (``+00:00`` or ``Z``) as an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _log_events(run: RunData) -> list[tuple[datetime, str, str]]:
    """(time, source, message) of every readable ``run.log`` line, in file order."""
    from .runlog import LOG_FILE

    try:
        text = (run.run_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split(None, 2)
        t = _ts(parts[0]) if parts else None
        if t is not None:
            out.append((t, parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""))
    return out


def _rendering_inside(run: RunData) -> bool:
    """True while this report is made by the run's own report step (the run has not ended yet)."""
    from .runlog import kernel_run_dir

    d = kernel_run_dir()
    try:
        return d is not None and Path(d).resolve() == run.run_dir.resolve()
    except OSError:
        return False


def attempts(run: RunData) -> pd.DataFrame:
    """One row per attempt of the run (the first, then one per resume): when it started and ended,
    how long it took, the step it started from and how it ended. ``seconds`` is None when the
    archive cannot tell when an attempt ended (a driver killed without a trace)."""
    cols = ["attempt", "started_at", "ended_at", "seconds", "from", "outcome"]
    m = run.manifest
    first = _ts(m.get("started_at"))
    if first is None:
        return pd.DataFrame(columns=cols)
    steps = [s for s in m.get("stages", []) if s.get("status") != "skipped" or s.get("seconds")]
    starts = [(first, steps[0].get("name") if steps else None)]
    starts += [(t, r.get("from")) for r in m.get("resumes") or [] if (t := _ts(r.get("at"))) is not None]
    starts.sort(key=lambda s: s[0])
    log = _log_events(run)
    # which log lines belong to which attempt: the manifest keeps whole seconds, the log's own start lines
    # are exact (an attempt that ended at 12:00:26.29 is not the one resumed at 12:00:26.69)
    marks = [t for t, src, msg in log if src == "driver" and _LOG_START.match(msg)]
    bounds = marks if len(marks) == len(starts) else [t for t, _ in starts]
    events = [(t, msg if src == "driver" else "") for t, src, msg in log]
    if not events:  # no run log: the steps' times (whole seconds) tell when each attempt was busy
        for s in m.get("stages", []):
            events += [(t, "") for t in (_ts(s.get("started_at")), _ts(s.get("ended_at"))) if t is not None]
    live = _rendering_inside(run)
    rows = []
    for i, (t0, frm) in enumerate(starts):
        last = i == len(starts) - 1
        t_next = None if last else bounds[i + 1]
        inside = [(t, msg) for t, msg in events if t >= bounds[i] and (t_next is None or t < t_next)]
        ended = [(t, mm.group(1)) for t, msg in inside if (mm := _LOG_END.match(msg))]
        if last and live:
            end, outcome = datetime.now(timezone.utc), _status(run)
        elif last and m.get("ended_at") and m.get("status") != "running":
            end = max([t for t in [_ts(m.get("ended_at"))] + [t for t, _ in inside] if t is not None], default=None)
            outcome = _status(run)
        else:
            # its own end line when it has one: lines after it (the next attempt re-planning before its
            # "resume from" line) are not this attempt's
            end = ended[-1][0] if ended else max((t for t, _ in inside), default=None)
            if end is None and i == len(starts) - 2 and m.get("seconds") is not None:  # the previous attempt's close
                end = first + timedelta(seconds=float(m["seconds"]))
            outcome = ended[-1][1] if ended else ("running" if last else "stopped")
        secs = round((end - t0).total_seconds(), 1) if end is not None and end >= t0 else None
        rows.append({"attempt": i + 1, "started_at": t0, "ended_at": end, "seconds": secs, "from": frm,
                     "outcome": outcome})
    return pd.DataFrame(rows, columns=cols)


def run_time(run: RunData) -> tuple[Optional[float], int]:
    """(seconds summed over the run's attempts, number of attempts); (None, 0) without a start."""
    a = attempts(run)
    known = a.seconds.dropna()
    if known.empty:
        return None, len(a)
    return round(float(known.sum()), 1), len(a)


def run_time_label(run: RunData) -> Optional[str]:
    """"1 min 11 s", or "1 min 11 s, summed over 2 attempts (28.0 s + 43.0 s)"."""
    total, n = run_time(run)
    if total is None:
        return None
    if n <= 1:
        return seconds_label(total)
    parts = " + ".join(seconds_label(s) for s in attempts(run).seconds)
    return f"{seconds_label(total)}, summed over {n} attempts ({parts})"


def attempts_table(run: RunData) -> pd.DataFrame:
    """``attempts`` for people: times as "2026-11-29 05:53 UTC", durations as "28.0 s"."""
    a = attempts(run)
    if a.empty:
        return pd.DataFrame(columns=["attempt", "started", "ended", "took", "from step", "outcome"])
    return pd.DataFrame({
        "attempt": a.attempt.map(count_label), "started": a.started_at.map(_dt_label), "ended": a.ended_at.map(_dt_label),
        "took": a.seconds.map(seconds_label), "from step": a["from"].map(lambda v: v or "—"), "outcome": a.outcome,
    })


def _dt_label(t: Any) -> str:
    if t is None or (isinstance(t, float) and t != t) or t is pd.NaT:
        return "—"
    return t.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if t.utcoffset() == timedelta(0) else "")


# -- completeness matrices -------------------------------------------------------------------
def _dates(values: Optional[Iterable]) -> list[date]:
    out = []
    for v in values or []:
        try:
            out.append(v if isinstance(v, date) else date.fromisoformat(str(v)[:10]))
        except ValueError:
            continue
    return sorted(set(out))


def _snapshot_frame(snapshot: Optional[dict]) -> pd.DataFrame:
    """One row per (table, season) entry of a validate snapshot.

    ``stale_dates`` (present, but computed from inputs that changed since) and ``waived_dates``
    (missing, and accepted with a reason) are optional keys: absent means none."""
    cols = ["phase", "table", "season", "expected", "present", "missing", "rows", "missing_dates",
            "stale_dates", "waived_dates", "missing_ranges", "states"]
    if not snapshot:
        return pd.DataFrame(columns=cols)
    rows = []
    for t in snapshot.get("tables", []):
        states = _states_of(t)  # the one state of each date not present (nbcore.state)
        missing = sorted(d for d, st in states.items() if st in ("missing", "failed", "blocked"))
        rows.append({
            "phase": str(t["phase"]), "table": t["table"], "season": int(t["season_year"]),
            "expected": int(t["expected_dates"]), "present": int(t["present_dates"]),
            "missing": len(missing), "rows": int(t.get("rows") or 0), "missing_dates": missing,
            "stale_dates": sorted(d for d, st in states.items() if st == "stale"),
            "waived_dates": sorted(d for d, st in states.items() if st == "waived"),
            "missing_ranges": list(t.get("missing_ranges") or []), "states": states,
        })
    return pd.DataFrame(rows, columns=cols)


def _states_of(entry: dict) -> dict[date, str]:
    """date -> state for every expected date of a snapshot entry that is not present (``nbcore.state``).
    A snapshot written before states were recorded: its missing, waived and stale dates."""
    if isinstance(entry.get("states"), dict):
        return {date.fromisoformat(d): str(st) for d, st in entry["states"].items()}
    out = {d: "missing" for d in _dates(entry.get("missing_dates"))}
    out.update({d: "waived" for d in _dates(entry.get("waived_dates")) if d in out})
    out.update({d: "stale" for d in _dates(entry.get("stale_dates"))})
    return out


def _state_sets(snapshot: Optional[dict]) -> dict[tuple[str, str, int], dict[date, str]]:
    """(phase, table, season) -> {date: state} of the dates not present."""
    return {(r.phase, r.table, r.season): r.states for r in _snapshot_frame(snapshot).itertuples(index=False)}


def _closed(run: RunData, kinds: Optional[set[str]] = None) -> dict[tuple[str, str, int], list[date]]:
    """Per (phase, table, season): the dates open before the run (missing, stale, failed, blocked;
    or only ``kinds``) and present after it (``nbcore.state.closed``). A date that became waived
    is not closed."""
    from .state import closed

    before, after = _state_sets(run.before), _state_sets(run.after)
    out = {}
    for key, states in before.items():
        if key not in after:
            continue
        done = sorted(d for d, st in states.items() if closed(st, after[key].get(d, "present"))
                      and (kinds is None or st in kinds))
        if done:
            out[key] = done
    return out


def _waived_in_run(run: RunData) -> int:
    """Table-dates open before the run and waived after it: reviewed, never counted as closed."""
    from .state import OPEN_STATES

    before, after = _state_sets(run.before), _state_sets(run.after)
    return sum(1 for key, states in before.items() if key in after
               for d, st in states.items() if st in OPEN_STATES and after[key].get(d) == "waived")


def _table_order(frame: pd.DataFrame) -> list[tuple[str, str]]:
    order = {t.name: i for i, t in enumerate(schema.all_tables())}
    keys = frame[["phase", "table"]].drop_duplicates()
    return sorted(map(tuple, keys.to_numpy()), key=lambda k: (PHASE_ORDER.get(k[0], 99), order.get(k[1], 99)))


def _pct(present, expected):
    return (100 * present / expected.where(expected > 0)).fillna(100.0)


def completeness_matrix(snapshot: Optional[dict]) -> pd.DataFrame:
    """present/expected game dates: (phase, table) rows x season columns, plus overall %."""
    f = _snapshot_frame(snapshot)
    if f.empty:
        return pd.DataFrame()
    f["cell"] = f.present.map(count_label) + "/" + f.expected.map(count_label)
    out = f.pivot_table(index=["phase", "table"], columns="season", values="cell", aggfunc="first")
    tot = f.groupby(["phase", "table"])[["present", "expected"]].sum()
    out["complete"] = _pct(tot.present, tot.expected).map(pct_label)
    out.columns = [season_label(c) if isinstance(c, (int, float)) else c for c in out.columns]
    return out.reindex(_table_order(f))


def before_after_matrix(run: RunData) -> pd.DataFrame:
    """The before and after matrices side by side (column groups ``before`` / ``after``)."""
    before, after = completeness_matrix(run.before), completeness_matrix(run.after)
    if before.empty and after.empty:
        return pd.DataFrame()
    parts = {k: v for k, v in (("before", before), ("after", after)) if not v.empty}
    return pd.concat(parts, axis=1)


def phase_summary(run: RunData) -> pd.DataFrame:
    """% of expected table-dates present per phase, before and after (numbers, not labels)."""
    out = {}
    for label, snap in (("before", run.before), ("after", run.after)):
        f = _snapshot_frame(snap)
        if f.empty:
            continue
        g = f.groupby("phase")[["present", "expected"]].sum()
        out[f"{label} %"] = _pct(g.present, g.expected).round(2)
        out[f"missing {label}"] = g.expected - g.present
        stale = f.groupby("phase").stale_dates.agg(lambda s: sum(len(x) for x in s))
        if stale.any():
            out[f"stale {label}"] = stale
    if not out:
        return pd.DataFrame()
    frame = pd.DataFrame(out)
    return frame.reindex(sorted(frame.index, key=lambda p: PHASE_ORDER.get(p, 99)))


def cell_status(snapshot: Optional[dict]) -> pd.DataFrame:
    """Per (table, season): % present, and the counts of missing, waived and stale dates — what
    one heatmap cell shows. ``label`` is "phase · table"."""
    f = _snapshot_frame(snapshot)
    cols = ["label", "phase", "table", "season", "pct", "expected", "missing", "waived", "stale"]
    if f.empty:
        return pd.DataFrame(columns=cols)
    f["pct"] = _pct(f.present, f.expected)
    f["waived"] = f.waived_dates.map(len)
    f["stale"] = f.stale_dates.map(len)
    f["label"] = f.phase + " · " + f.table
    order = {k: i for i, k in enumerate(_table_order(f))}
    f["_k"] = [order[(p, t)] for p, t in zip(f.phase, f.table)]
    return f.sort_values(["_k", "season"])[cols].reset_index(drop=True)


def pct_pivot(snapshot: Optional[dict]) -> pd.DataFrame:
    """% complete, "phase · table" rows x season columns (what the heatmap shows)."""
    f = cell_status(snapshot)
    if f.empty:
        return pd.DataFrame()
    order = list(dict.fromkeys(f.label))
    return f.pivot(index="label", columns="season", values="pct").fillna(100.0).reindex(order)


def heatmaps(run: RunData):
    """Before and after heatmaps, one above the other (a matplotlib Figure)."""
    import matplotlib.pyplot as plt

    from .charts import completeness_heatmap

    cells = [(label, cell_status(snap)) for label, snap in (("before", run.before), ("after", run.after))]
    cells = [(label, c) for label, c in cells if not c.empty]
    if not cells:
        return None
    n_rows = sum(c.label.nunique() for _, c in cells)
    n_cols = max(c.season.nunique() for _, c in cells)
    fig, axes = plt.subplots(len(cells), 1, figsize=(1.1 * n_cols + 4.2, 0.32 * n_rows + 1.4 * len(cells)), squeeze=False)
    for ax, (label, c) in zip(axes[:, 0], cells):
        completeness_heatmap(c, ax=ax, title=f"{label} the run: % of expected game dates present")
    fig.tight_layout()
    return fig


# -- date ranges -----------------------------------------------------------------------------------
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def _range_bounds(label: str) -> Optional[tuple[date, date]]:
    found = _ISO.findall(str(label))
    try:
        return (date.fromisoformat(found[0]), date.fromisoformat(found[-1])) if found else None
    except ValueError:
        return None


def game_calendar(*snapshots: Optional[dict]) -> dict[int, list[date]]:
    """Per season, a stand-in for the schedule's game dates, good enough to group any set of
    missing, closed or stale dates exactly as ``nbcore.validate.date_ranges`` grouped them.

    A snapshot lists missing dates and their ranges (grouped on the real schedule), not every
    game date. Two dates inside one of those ranges are consecutive game dates; two dates a
    day apart are too. Between any other pair a separator day is put in, so a range never
    spans a date the snapshots cannot vouch for (never merges across a present game date)."""
    dates: dict[int, set[date]] = {}
    linked: set[tuple[date, date]] = set()
    for snap in snapshots:
        f = _snapshot_frame(snap)
        for r in f.itertuples(index=False):
            known = dates.setdefault(r.season, set())
            known.update(r.missing_dates)
            known.update(r.stale_dates)
            for label in r.missing_ranges:
                bounds = _range_bounds(label)
                if bounds is None:
                    continue
                inside = [d for d in r.missing_dates if bounds[0] <= d <= bounds[1]]
                linked.update(zip(inside, inside[1:]))
    out = {}
    for season, known in dates.items():
        ordered = sorted(known)
        cal = ordered[:1]
        for a, b in zip(ordered, ordered[1:]):
            if (a, b) not in linked and (b - a).days > 1:
                cal.append(a + timedelta(days=1))  # a day the snapshots cannot vouch for
            cal.append(b)
        out[season] = cal
    return out


def ranges_text(dates: Iterable[date], calendar: Optional[list[date]] = None) -> str:
    """"2024-04-20 → 2024-05-04 (14 dates); 2024-10-31", grouped by ``validate.date_ranges``."""
    ds = sorted(set(dates))
    if calendar is None:
        calendar = _every_day(ds)
    return "; ".join(r.label() for r in date_ranges(ds, sorted(set(calendar) | set(ds))))


def _every_day(ds: list[date]) -> list[date]:
    if not ds:
        return []
    return [ds[0] + timedelta(days=i) for i in range((ds[-1] - ds[0]).days + 1)]


def group_dates(dates: list[date], expected: Optional[list[date]] = None) -> list[tuple[date, date, int]]:
    """``validate.date_ranges`` as (first, last, n) tuples; ``expected`` are the game dates (without
    them every calendar day counts, so an off day splits a range). Kept for ``why`` and ``plan``."""
    ds = sorted(set(dates))
    cal = sorted(set(expected) | set(ds)) if expected is not None else _every_day(ds)
    return [(r.first, r.last, r.dates) for r in date_ranges(ds, cal)]


def range_label(first: date, last: date, n: int) -> str:
    return first.isoformat() if n == 1 else f"{first} → {last} ({n} dates)"


def _missing_sets(snapshot: Optional[dict]) -> dict[tuple[str, str, int], set[date]]:
    """(phase, table, season) -> the dates without rows and not waived (missing, failed, blocked)."""
    return {key: {d for d, st in states.items() if st in ("missing", "failed", "blocked")}
            for key, states in _state_sets(snapshot).items()}


# -- dates closed / still open ------------------------------------------------------------------
def dates_closed(run: RunData) -> pd.DataFrame:
    """Per table and season: dates missing before the run and present after, grouped into ranges."""
    cols = ["stage", "phase", "table", "season", "dates closed", "ranges"]
    calendar = game_calendar(run.before, run.after)
    rows = []
    for key, closed in _closed(run).items():
        phase, table, season = key
        rows.append({"stage": PHASE_STAGE.get(phase, "?"), "phase": phase, "table": table, "season": season,
                     "dates closed": len(closed), "ranges": ranges_text(closed, calendar.get(season))})
    frame = pd.DataFrame(rows, columns=cols)
    return _sort(frame)


def _group_tables(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows that differ only by table merged into one, listing the tables (in pipeline order)."""
    if frame.empty:
        return frame.assign(tables=pd.Series(dtype=object)).drop(columns=["table", "phase"], errors="ignore")
    out = []
    for k, g in frame.groupby(keys, sort=False):
        row = dict(zip(keys, k if isinstance(k, tuple) else (k,)))
        row["tables"] = list(g.table)
        out.append(row)
    return pd.DataFrame(out)


def dates_closed_grouped(run: RunData) -> pd.DataFrame:
    """Dates closed, one row per (stage, season, identical ranges): the nine derive tables that
    filled the same playoff dates are one row, not nine."""
    f = dates_closed(run)
    cols = ["stage", "season", "ranges", "dates closed", "tables"]
    if f.empty:
        return pd.DataFrame(columns=cols)
    return _group_tables(f, ["stage", "season", "ranges", "dates closed"])[cols]


def closed_by_stage(run: RunData) -> pd.DataFrame:
    """How many table-dates each stage closed, and over which game dates."""
    per_stage: dict[str, dict[str, Any]] = {}
    for key, done in _closed(run).items():
        closed = set(done)
        s = per_stage.setdefault(PHASE_STAGE.get(key[0], "?"), {"tables": set(), "table-dates": 0, "dates": set()})
        s["tables"].add(key[1])
        s["table-dates"] += len(closed)
        s["dates"] |= closed
    order = ["load", "derive", "predict", "grade"]
    rows = [{"stage": st, "tables": len(v["tables"]), "table-dates closed": v["table-dates"],
             "game dates": len(v["dates"]), "first": min(v["dates"]), "last": max(v["dates"])}
            for st, v in sorted(per_stage.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9)]
    return pd.DataFrame(rows, columns=["stage", "tables", "table-dates closed", "game dates", "first", "last"])


def _resolved(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


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
    overridden = rec["status"] == "overridden"
    reason = rec["override_reason"] or (run.manifest.get("params") or {}).get("gate_override_reason")
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
        waived_dates = t.get("waived_dates") or {}
        if isinstance(waived_dates, list):  # a snapshot that lists the dates without reasons
            waived_dates = {d: "waived: accepted as missing" for d in waived_dates}
        for d, why in waived_dates.items():
            src, _, text = str(why).partition(": ")
            reasons.setdefault(f"waived ({src}): {text}", []).append(date.fromisoformat(d))
        for reason, ds in reasons.items():
            rows.append({"phase": str(t["phase"]), "table": t["table"], "season": int(t["season_year"]), "dates": len(ds),
                         "ranges": "; ".join(range_label(*g) for g in group_dates(sorted(ds))), "reason": reason})
    frame = pd.DataFrame(rows, columns=cols)
    listed = {(r.table, r.season) for r in frame.itertuples(index=False)}
    legacy = dates_open(run, waived_only=True)  # dates waived by the run's waivers, not marked in the snapshot
    legacy = legacy[[(t, s) not in listed for t, s in zip(legacy.table, legacy.season)]] if len(legacy) else legacy
    return _sort(pd.concat([frame, legacy[cols]], ignore_index=True)) if len(legacy) else _sort(frame)


def dates_open(run: RunData, waived_only: bool = False) -> pd.DataFrame:
    """Dates still missing after the run, grouped by table and reason (waived dates: ``dates_waived``).

    Reasons, first that applies: the snapshot or a load waiver marks the date waived; the
    date's load failed (failures.csv, retries that succeeded left out); the gate was
    overridden while raw was incomplete; the stage that writes the table did not run or
    failed; an upstream table still misses the date; otherwise unexplained (ask
    ``runbook why TABLE DATE``). ``kind`` is ``missing`` or ``waived``; stale dates are in
    ``dates_stale``.
    """
    cols = ["phase", "table", "season", "kind", "dates", "ranges", "reason"]
    states = _state_sets(run.after)
    after = {key: {d for d, st in m.items() if st in ("missing", "failed", "blocked", "waived")} for key, m in states.items()}
    if not after:
        return pd.DataFrame(columns=cols)
    snap_waived = {key: {d for d, st in m.items() if st == "waived"} for key, m in states.items()}
    calendar = game_calendar(run.before, run.after)
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
        reasons: dict[tuple[str, str], list[date]] = {}
        try:
            upstream = [u.split(".")[-1] for u in schema.table(table).upstream]
        except KeyError:
            upstream = []
        stage = PHASE_STAGE.get(phase)
        # derive skips every date a required source is waived on, so those waive every derived table
        sources = _raw_ancestors(table) + ([s for s in required if s not in _raw_ancestors(table)] if phase != "2" else [])
        for d in sorted(missing):
            w = next(((src, waived[(src, d)]) for src in sources if (src, d) in waived), None)
            kind = "missing"
            is_waived = w is not None or d in snap_waived.get((phase, table, season), set())
            if is_waived != waived_only:
                continue  # waived dates are reviewed, not open: listed by dates_waived
            f = next((failed[(src, d)] for src in sources if (src, d) in failed), None)
            if is_waived:
                kind, reason = "waived", (f"waived ({w[0]}): {w[1]}" if w is not None else "waived: accepted as missing")
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
                reason = f"upstream missing: {', '.join(gaps)}" if gaps else f"not filled; run `{runbook_command('why', table, d)}`"
            reasons.setdefault((kind, reason), []).append(d)
        for (kind, reason), ds in reasons.items():
            rows.append({"phase": phase, "table": table, "season": season, "kind": kind, "dates": len(ds),
                         "ranges": ranges_text(ds, calendar.get(season)), "reason": reason})
    return _sort(pd.DataFrame(rows, columns=cols))


def dates_stale(run: RunData) -> pd.DataFrame:
    """Dates present after the run but computed from inputs that changed since (``stale_dates``
    of the after snapshot): present is not complete."""
    cols = ["phase", "table", "season", "dates", "ranges"]
    f = _snapshot_frame(run.after)
    calendar = game_calendar(run.before, run.after)
    rows = [{"phase": r.phase, "table": r.table, "season": r.season, "dates": len(r.stale_dates),
             "ranges": ranges_text(r.stale_dates, calendar.get(r.season))}
            for r in f.itertuples(index=False) if r.stale_dates]
    return _sort(pd.DataFrame(rows, columns=cols))


def findings_open(run: RunData) -> pd.DataFrame:
    """Checks the after-snapshot failed that no waiver covers (duplicate keys, impossible values,
    failed reconciliations): rows that cannot be true, open until fixed. One row per check and
    table, with how many and where (validate's ``open_errors``; rebuilt from ``findings`` for an
    archive written before that key existed)."""
    cols = ["check", "table", "count", "where"]
    after = run.after or {}
    rows = after.get("open_errors")
    if rows is None:
        f = pd.DataFrame(after.get("findings") or [])
        if f.empty or "severity" not in f:
            return pd.DataFrame(columns=cols)
        f = f[(f.severity == "block") & f.waived_by.isna()]
        rows = [{"check": c, "table": t, "count": len(g), "where": "; ".join(map(str, g.detail.head(3)))}
                for (c, t), g in f.groupby(["check", "table"])]
    return pd.DataFrame(rows, columns=cols)


def dates_open_grouped(run: RunData) -> pd.DataFrame:
    """Still open (missing, failed, blocked, stale), one row per (kind, season, ranges, reason) with
    its tables. Waived dates are reviewed, never open: ``dates_waived`` lists them."""
    cols = ["kind", "season", "ranges", "dates", "reason", "tables"]
    frames = [dates_open(run)]
    stale = dates_stale(run)
    if not stale.empty:
        frames.append(stale.assign(kind="stale", reason="present, but computed before an input changed"))
    f = pd.concat([x for x in frames if not x.empty], ignore_index=True) if any(not x.empty for x in frames) else pd.DataFrame()
    if f.empty:
        return pd.DataFrame(columns=cols)
    return _group_tables(f, ["kind", "season", "ranges", "dates", "reason"])[cols]


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    order = {t.name: i for i, t in enumerate(schema.all_tables())}
    key = frame.phase.map(PHASE_ORDER).fillna(99) * 1000 + frame.table.map(order).fillna(99)
    return frame.assign(_k=key).sort_values(["_k", "season"], kind="stable").drop(columns="_k").reset_index(drop=True)


# -- failures, retries, gate, grading -------------------------------------------------------------
def failures(run: RunData) -> pd.DataFrame:
    """Every failed attempt the load stage recorded (failures.csv), in plain words: the date, the
    source, what went wrong (paths relative), which attempt, and what became of it since: recovered
    (a later load of that source and date succeeded, per processor_run_history), waived, or still
    failing."""
    f = _resolutions(run).failures
    cols = ["date", "source", "reason", "attempt", "outcome", "status", "resolved_by"]
    if f.empty:
        return pd.DataFrame(columns=cols)
    date_col = next((c for c in ("game_date", "date", "data_date") if c in f.columns), None)
    words = {"resolved": "recovered by a retry", "waived": "waived", "open": "still failing"}
    rows = []
    for r in f.to_dict("records"):
        rows.append({
            "date": str(r.get(date_col) or "")[:10] if date_col else "",
            "source": r.get("source") or r.get("table") or "",
            "reason": strip_paths(r.get("reason") or r.get("error") or "", run.run_dir),
            "attempt": count_label(r.get("attempt")) if r.get("attempt") == r.get("attempt") else "—",
            "outcome": words.get(str(r.get("status")), "still failing"),
            "status": str(r.get("status") or "open"),
            "resolved_by": r.get("resolved_by") if isinstance(r.get("resolved_by"), str) else None,
        })
    return pd.DataFrame(rows, columns=cols)


def retries(run: RunData) -> pd.DataFrame:
    """Per stage that retried or failed: retries, how many a retry recovered, how many still fail."""
    cols = ["stage", "retries", "recovered", "still failing"]
    rows = []
    fl = run.failures
    for s in run.manifest.get("stages", []):
        if s.get("stage") != "load" or not s.get("record"):
            continue  # the load is the stage that retries (its record: retries, failed)
        rec = run.record(s["name"])
        r, still = int(rec["retries"]), int(rec["failed"])
        if not (r or still):
            continue
        recovered = max(r - still, 0)
        if not fl.empty and "resolved" in fl:
            recovered = int(fl["resolved"].map(_resolved).sum())
        rows.append({"stage": s.get("name"), "retries": r, "recovered": int(recovered), "still failing": still})
    return pd.DataFrame(rows, columns=cols)


def _collapse_text(items: list[str]) -> list[str]:
    """The same text repeated n times shown once, with "(× n)"; first-seen order kept."""
    seen: dict[str, int] = {}
    for x in items:
        seen[x] = seen.get(x, 0) + 1
    return [x if n == 1 else f"{x} (× {n})" for x, n in seen.items()]


_WHERE_KEYS = ("date", "game_id", "present", "blocking")  # what differs between repeats of one finding


def _collapse_entries(entries: list[dict], run_dir: Optional[Path] = None) -> list[str]:
    """Record rows (gate findings, waivers) that say the same thing on different dates or games,
    one line each: what they say, then how many and where — never the same reason ten times."""
    groups: dict[str, list[dict]] = {}
    for d in entries:
        what = ", ".join(("approved by " if k == "approved_by" else "") + _value_text(x, run_dir)
                         for k, x in d.items() if k not in _WHERE_KEYS and x not in (None, "", False))
        groups.setdefault(what, []).append(d)
    out = []
    for what, ds in groups.items():
        days = _dates(d.get("date") for d in ds)
        games = sorted({str(d["game_id"]) for d in ds if d.get("game_id")})
        where = "; ".join(range_label(*g) for g in group_dates(days)[:3]) if days else ""
        if days and len(group_dates(days)) > 3:
            where += f" and {len(group_dates(days)) - 3} more ranges"
        if len(ds) == 1:
            out.append(f"{what} ({where})" if where else what)
            continue
        what_n = f"{what} (× {len(ds)}: {plural(len(games), 'game')}" if games else f"{what} (× {len(ds)}"
        out.append(f"{what_n}{', ' + where if where else ''})")
    return out


def _value_text(v: Any, run_dir: Optional[Path] = None) -> str:
    """A record value as words: booleans as yes/no, lists joined (or counted, for rows)."""
    if v is None or (isinstance(v, float) and v != v):
        return "none"
    if isinstance(v, bool):
        return yes_no(v)
    if isinstance(v, (int, float)):
        return count_label(v) if float(v).is_integer() else f"{v:,.3g}"
    if isinstance(v, dict):
        return ", ".join(f"{a}: {_value_text(b, run_dir)}" for a, b in v.items()) or "none"
    if isinstance(v, list):
        if not v:
            return "none"
        if isinstance(v[0], dict):
            return plural(len(v), "entry", "entries")
        parts = _collapse_text([strip_paths(x, run_dir) if isinstance(x, str) else _value_text(x, run_dir) for x in v])
        return ", ".join(parts[:12]) + (f" and {len(parts) - 12} more" if len(parts) > 12 else "")
    return strip_paths(v, run_dir)


GATE_FIELDS = [("status", "verdict"), ("reason", "why"), ("required_sources", "sources that must be complete"),
               ("missing", "missing (blocking)"), ("not_blocking", "missing (reported, not blocking)"),
               ("waived", "waived"), ("override_reason", "override reason"), ("retry_commands", "to retry")]


def gate_verdict(run: RunData) -> pd.DataFrame:
    """The gate's verdict, override reason and what it found missing (from its stage record)."""
    rec = run.record("gate")
    if not rec:
        return pd.DataFrame(columns=["", "value"]).set_index("")
    rows = []
    for key, label in GATE_FIELDS:
        if key in rec and not (key == "override_reason" and not rec.get(key)):
            v = rec[key]
            if isinstance(v, list) and v and isinstance(v[0], dict):
                rows.append((label, "; ".join(_collapse_entries(v, run.run_dir))))
                continue
            rows.append((label, _value_text(v, run.run_dir)))
    override = _gate_override(run)
    if override and not any(k == "override reason" for k, _ in rows):
        rows.insert(1, ("override reason", override))
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


WARNS_SUFFIX = " (calibrated; warns)"  # how the gate names a check whose findings only warn (nbcore.gate)


def _warn_level(rec: dict) -> set[tuple[str, str]]:
    """(check, source) of the gate's warn-level findings: unusual for the source and season, never blocking."""
    return {(str(w.get("check")), str(w.get("source"))) for w in rec.get("warnings") or [] if isinstance(w, dict)}


def gate_checks(run: RunData) -> pd.DataFrame:
    """The gate's individual checks: what was checked on which source, blocking or not, result.

    A calibrated check whose findings only warn (``level`` warn: a short-handed game is real) that
    found something is "warned", never "FAILED": ``runbook status`` says the same."""
    rec = run.record("gate")
    v = rec.get("checks")
    if not (isinstance(v, list) and v and isinstance(v[0], dict)):
        return pd.DataFrame()
    f = pd.DataFrame(v)
    warns = _warn_level(rec)
    names = f["check"].astype(str) if "check" in f else pd.Series("", index=f.index)
    sources = f["source"].astype(str) if "source" in f else pd.Series("", index=f.index)
    warn = [n.endswith(WARNS_SUFFIX) or (n, s) in warns for n, s in zip(names, sources)]
    if "check" in f:
        f["check"] = names.map(lambda n: n[:-len(WARNS_SUFFIX)] + " (calibrated)" if n.endswith(WARNS_SUFFIX) else n)
    if "passed" in f:
        f["passed"] = [("passed" if x is True or _resolved(x) else ("warned" if w else "FAILED"))
                       for x, w in zip(f["passed"], warn)]
    if "blocking" in f:
        f["blocking"] = f["blocking"].map(yes_no)
    if "problems" in f:
        f["problems"] = f["problems"].map(count_label)
    for c in f.columns:  # anything else a check carries, in words (no raw True/False/None)
        if c not in ("passed", "blocking", "problems"):
            f[c] = f[c].map(lambda x: x if isinstance(x, str) else _value_text(x, run.run_dir))
    return f.astype(object).where(f.notna(), "—")


def gate_check_counts(checks: pd.DataFrame) -> str:
    """"12 checks: 10 passed, 2 warned" (the words ``runbook status`` uses)."""
    if checks.empty or "passed" not in checks:
        return plural(len(checks), "check")
    n = checks.passed.value_counts()
    parts = [f"{count_label(int(n[k]))} {w}" for k, w in (("passed", "passed"), ("warned", "warned"), ("FAILED", "failed"))
             if n.get(k)]
    return f"{plural(len(checks), 'check')}: " + ", ".join(parts)


GRADING_CSV = "grading_metrics.csv"
GRADED_TABLE = "nba_predictions.prediction_accuracy"
# A bet on a line at −110 odds risks 110 to win 100: it breaks even when right 110 / 210 of the time.
BREAK_EVEN = 110 / 210
ALL_SEASONS, ALL_SYSTEMS = "all seasons", "all systems"

# Plain-words captions of every grading metric (the report shows them under the table).
METRIC_CAPTIONS = {
    "graded": "graded predictions: rows of prediction_accuracy, one per player, game and prediction system, compared "
              "with the points the player actually scored (voided ones left out)",
    "voided": "predictions for players who did not play: not counted as misses",
    "MAE": "mean absolute error: on average, how many points a prediction was off (lower is better)",
    "bias": "mean of predicted − actual points: positive means the system over-predicts, negative that it under-predicts",
    "within 3": "share of predictions within 3 points of the actual score",
    "calls": "OVER or UNDER recommendations against a points line (passes and missing lines left out)",
    "hit rate": "share of calls that were right (pushes left out), with its 95 % interval: "
                "the true rate is between the low and high bound 19 times out of 20; 50 % is a coin flip",
    "vs break-even": "hit rate minus 52.4 %, the rate a bet at −110 odds needs to break even (risk 110 to win 100): "
                     "above 0 a bettor following the calls would have won money",
    "pushes": "calls where the player scored exactly the line: neither right nor wrong",
    "passes": "predictions where the system made no call (its edge over the line was too small)",
}


def with_totals(frame: pd.DataFrame) -> pd.DataFrame:
    """``grading_metrics`` rows (per system and season), each system followed by its row over all
    seasons (when there are several) and, last, one row for all systems together (when there are
    several). Counts are summed; MAE, bias and within 3 are weighted by graded predictions; the hit
    rate is recomputed from the calls (right / decided) with its 95 % Wilson interval."""
    if frame is None or frame.empty or "system_id" not in frame:
        return frame
    f = frame.reset_index(drop=True)
    seasons = "season_year" in f and f.season_year.nunique() > 1
    parts = []
    for system_id, g in f.groupby("system_id", sort=False):
        parts.append(g)
        if seasons:
            parts.append(_pooled(g, system_id, ALL_SEASONS))
    if f.system_id.nunique() > 1:
        parts.append(_pooled(f, ALL_SYSTEMS, ALL_SEASONS))
    out = pd.concat(parts, ignore_index=True)
    if "season_year" in out:
        out["season_year"] = out.season_year.astype(object)
    return out


def _pooled(g: pd.DataFrame, system_id: str, season: str) -> pd.DataFrame:
    from .grade import wilson_interval

    num = lambda c: pd.to_numeric(g[c], errors="coerce").fillna(0)  # noqa: E731
    row: dict[str, Any] = {"system_id": system_id}
    if "season_year" in g:
        row["season_year"] = season
    for c in ("graded", "voided", "calls", "correct", "wrong", "pushes", "passes", "no_line"):
        if c in g:
            row[c] = int(num(c).sum())
    weight = num("graded") if "graded" in g else pd.Series(1.0, index=g.index)
    for c in ("mae", "bias", "within_3_pct"):
        if c in g and weight[g[c].notna()].sum() > 0:
            ok = g[c].notna()
            row[c] = float((num(c)[ok] * weight[ok]).sum() / weight[ok].sum())
    if "hit_rate" in g:
        if {"correct", "wrong"} <= set(g.columns):
            right, decided = int(num("correct").sum()), int((num("correct") + num("wrong")).sum())
        elif "calls" in g:  # an older archive: the calls decided are the calls but the pushes
            decided_each = num("calls") - (num("pushes") if "pushes" in g else 0)
            rate = pd.to_numeric(g.hit_rate, errors="coerce")
            ok = rate.notna()
            right, decided = int(round(float((rate[ok] * decided_each[ok]).sum()))), int(decided_each[ok].sum())
        else:
            right = decided = 0
        row["hit_rate"] = right / decided if decided else float("nan")
        row["hit_rate_low"], row["hit_rate_high"] = wilson_interval(right, decided)
    return pd.DataFrame([row])


def graded_total(run: RunData) -> Optional[int]:
    """The report's one "graded" figure: graded predictions in the run's scope after the run — rows
    of prediction_accuracy (one per player, game and prediction system) in the run's seasons,
    voided ones left out. The sum of the grading table's per-system rows; None without grading."""
    m = grading_metrics(run)
    if m is None or m.empty or "graded" not in m:
        return None
    return int(pd.to_numeric(m.graded, errors="coerce").fillna(0).sum())


def graded_note(run: RunData) -> Optional[str]:
    """What the "graded predictions" figure counts, and how it relates to what the run itself did."""
    k = key_figures(run)
    if k["graded"] is None:
        return None
    m = grading_metrics(run)
    systems = m.system_id.nunique() if "system_id" in m else 0
    text = (f"Graded predictions ({count_label(k['graded'])}): rows of prediction_accuracy in the run's seasons "
            f"after the run, one per player, game and prediction system ({plural(systems, 'system')}), "
            f"voided ones (the player did not play) left out; the grading table below adds them up per system.")
    if k["graded_by_run"] is not None and k["graded_dates"]:
        text += (f" This run graded the {plural(k['graded_dates'], 'date')} that needed it, "
                 f"{count_label(k['graded_by_run'])} graded predictions on them")
        if k["graded_rows_written"] is not None:
            text += (f"; it wrote {count_label(k['graded_rows_written'])} rows to prediction_accuracy "
                     f"(new or changed grades, voided ones included; a grade already right is not rewritten)")
        text += "."
    return text


def grading_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``grading_metrics`` for people: seasons as 2023-24, rates as percentages, counts with
    thousands separators, bias signed, and the hit rate with its 95 % bounds. Each system over all its
    seasons and all systems together follow (``with_totals``); "vs break-even" is the hit rate
    against the 52.4 % a bet at −110 odds needs."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    f = with_totals(frame)
    out = pd.DataFrame(index=f.index)
    out["system"] = f.get("system_id", pd.Series("—", index=f.index)).astype(str)
    if "season_year" in f:
        out["season"] = f.season_year.map(season_label)
    for c in ("graded", "voided"):
        if c in f:
            out[c] = f[c].map(count_label)
    num = lambda c: pd.to_numeric(f[c], errors="coerce") if c in f else None  # noqa: E731
    if "mae" in f:
        out["MAE"] = num("mae").map(lambda v: "—" if v != v else f"{v:.2f} pts")
    if "bias" in f:
        out["bias"] = num("bias").map(lambda v: "—" if v != v else f"{round(v, 2) + 0.0:+.2f} pts")  # never "-0.00"
    if "within_3_pct" in f:
        out["within 3"] = num("within_3_pct").map(lambda v: "—" if v != v else f"{v:.1f} %")
    if "calls" in f:
        out["calls"] = f["calls"].map(count_label)
    if "hit_rate" in f:
        lo, hi = num("hit_rate_low"), num("hit_rate_high")
        if lo is None and "hit_rate_ci" in f:
            lo = f.hit_rate_ci.map(lambda x: x[0] if isinstance(x, (list, tuple)) else None)
            hi = f.hit_rate_ci.map(lambda x: x[1] if isinstance(x, (list, tuple)) else None)
        out["hit rate"] = [rate_label(h) + (f" ({rate_label(a)} to {rate_label(b)})" if lo is not None and a == a and a is not None else "")
                           for h, a, b in zip(num("hit_rate"), lo if lo is not None else [None] * len(f),
                                              hi if hi is not None else [None] * len(f))]
        out["vs break-even"] = num("hit_rate").map(lambda v: "—" if v != v else f"{100 * (v - BREAK_EVEN):+.1f} pts")
    for c in ("pushes", "passes"):
        if c in f:
            out[c] = f[c].map(count_label)
    return out.reset_index(drop=True)


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
                from .archive import write_atomic

                write_atomic(csv_path, frame.to_csv(index=False))
            return frame
    rec = run.record("grade")
    mbs = rec.get("metrics_by_system")
    if isinstance(mbs, dict) and mbs:
        frame = pd.DataFrame.from_dict(mbs, orient="index").rename_axis("system_id").reset_index()
        return frame.drop(columns=[c for c in ("hit_rate_ci",) if c in frame.columns])
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
                        "calls", "correct", "wrong", "hit_rate", "hit_rate_low", "hit_rate_high", "pushes", "passes")
            if c in frame.columns]
    frame = frame[keep].copy()
    for c in ("mae", "bias", "rmse", "within_3_pct", "hit_rate", "hit_rate_low", "hit_rate_high"):
        if c in frame.columns:
            frame[c] = pd.to_numeric(frame[c]).round(3)
    return frame


def plan_vs_outcome(run: RunData) -> pd.DataFrame:
    """Per writing stage: the table-dates ``plan.json`` said the run would rebuild (missing and
    stale apart) and the table-dates the stage records say it rebuilt."""
    cols = ["stage", "planned", "planned_missing", "planned_stale", "rebuilt"]
    try:
        plan = json.loads((run.run_dir / "plan.json").read_text())
    except (OSError, ValueError):
        return pd.DataFrame(columns=cols)
    planned: dict[str, list[int]] = {}
    for row in plan.get("tables", []):
        p = planned.setdefault(row["stage"], [0, 0, 0])
        p[0] += int(row.get("dates") or 0)
        p[1] += int(row.get("missing") or 0)
        p[2] += int(row.get("stale") or 0)
    done = {stage: _rebuilt(run, stage) for stage in ("derive", "predict", "grade")}
    rows = [{"stage": stage, "planned": p[0], "planned_missing": p[1], "planned_stale": p[2],
             "rebuilt": done.get(stage)} for stage, p in planned.items() if stage in done]
    return pd.DataFrame(rows, columns=cols)


def by_hand(run: RunData) -> pd.DataFrame:
    """Stages run by hand (``kind: interactive`` archives beside this run) since the previous
    runbook run started, up to this run's start: they wrote to the warehouse under the lock and
    their work is part of this run's before state, so the report credits them by name."""
    cols = ["run_id", "stage", "status", "started_at", "rows_written", "reason"]
    base = run.run_dir.parent
    started = run.manifest.get("started_at") or ""
    previous = ""
    rows = []
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        if d == run.run_dir or not (d / "manifest.json").is_file():
            continue
        try:
            m = json.loads((d / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        at = m.get("started_at") or ""
        if not at or (started and at >= started):
            continue
        if m.get("kind") != "interactive":
            previous = max(previous, at)
            continue
        stage = (m.get("stages") or [{}])[0].get("stage")
        rows.append({"run_id": m.get("run_id", d.name), "stage": stage, "status": m.get("status"), "started_at": at,
                     "rows_written": int(sum((m.get("rows_written") or {}).values())), "reason": m.get("reason")})
    return pd.DataFrame([r for r in rows if r["started_at"] >= previous], columns=cols)


def _attempts(run: RunData, name: str) -> list[dict]:
    """A step's typed records over all its attempts in this run (a resume sets earlier ones
    aside in stages/attempts/), oldest first."""
    older = sorted((run.run_dir / "stages" / "attempts").glob(f"{name}-*.json"),
                   key=lambda f: int(f.stem.rsplit("-", 1)[-1]) if f.stem.rsplit("-", 1)[-1].isdigit() else 0)
    out = []
    for f in older:
        try:
            out.append(parse_record(STEP_STAGE.get(name, name), json.loads(f.read_text()), f.name).to_json())
        except (OSError, ValueError):
            continue
    current = run.record(name)
    return out + ([current] if current else [])


def _rebuilt(run: RunData, stage: str) -> Optional[int]:
    """Table-dates (derive) or dates (predict, grade) the stage rebuilt over all its attempts:
    what a failed attempt committed counts, so a resumed run adds up to its plan."""
    records = _attempts(run, stage)
    if not records:
        return None
    if stage == "derive":
        per_table: dict[str, set] = {}
        for r in records:
            for table, days in (r.get("table_dates") or {}).items():
                per_table.setdefault(table, set()).update(days)
        return sum(len(v) for v in per_table.values())
    return len({d for r in records for c in r.get("chunks") or [] if c.get("status") == "succeeded"
                for d in c.get("dates") or []})


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
    """Each step: status, start offset from the run's start, seconds, kernel overhead, error.

    The report step is still running while the report is built: it shows as "running (this
    report)" with no duration rather than a missing number."""
    cols = ["step", "status", "start_s", "seconds", "kernel_overhead_s", "error"]
    steps = run.manifest.get("stages", [])
    starts = [s.get("started_at") for s in steps if s.get("started_at")]
    if not starts:
        return pd.DataFrame(columns=cols)
    t0 = min(datetime.fromisoformat(s) for s in starts)
    rows = []
    for s in steps:
        st = datetime.fromisoformat(s["started_at"]) if s.get("started_at") else None
        status = s.get("status") or "pending"
        if s.get("name") == "report" and status == "running":
            status = "running (this report)"
        rows.append({"step": s.get("name"), "status": status,
                     "start_s": (st - t0).total_seconds() if st else None, "seconds": s.get("seconds"),
                     "kernel_overhead_s": s.get("kernel_overhead_s"),
                     "error": strip_paths(s.get("error"), run.run_dir) if s.get("status") != "skipped" and s.get("error") else None,
                     "bigquery_jobs": (s.get("bigquery") or {}).get("jobs"), "bytes_billed": s.get("bytes_billed")})
    frame = pd.DataFrame(rows, columns=cols + ["bigquery_jobs", "bytes_billed"])
    if frame.bigquery_jobs.isna().all() and frame.bytes_billed.isna().all():  # not a BigQuery run
        frame = frame[cols]
    return frame


def timeline_table(run: RunData) -> pd.DataFrame:
    """``timeline`` for people: seconds as "7.6 s", a dash where there is no number, notes in words."""
    t = timeline(run)
    if t.empty:
        return pd.DataFrame(columns=["step", "status", "started", "took", "note"])
    out = pd.DataFrame({
        "step": t.step, "status": t.status,
        "started": t.start_s.map(lambda v: "—" if v is None or v != v else f"+{seconds_label(v)}"),
        "took": t.seconds.map(seconds_label),
        "note": t.error.map(lambda e: e if isinstance(e, str) and e else ""),
    })
    if "bigquery_jobs" in t:
        out["BigQuery jobs"] = t.bigquery_jobs.map(count_label)
        out["bytes billed"] = t.bytes_billed.map(count_label)
    return out


STATUS_COLORS = {"succeeded": "#1a7f37", "failed": "#cf222e", "blocked": "#bc4c00", "skipped": "#8c959f",
                 "running": "#0969da", "pending": "#bdbdbd", "interrupted": "#9a6700"}


def timeline_chart(run: RunData):
    """Horizontal bars: when each step ran and how long it took, colored by status."""
    import matplotlib.pyplot as plt

    t = timeline(run)
    t = t[t.start_s.notna() & t.seconds.notna()]
    if t.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(t) + 1.1))
    y = list(range(len(t)))[::-1]
    ax.barh(y, t.seconds.astype(float).clip(lower=0.05), left=t.start_s,
            color=[STATUS_COLORS.get(str(s).split(" ")[0], "#777") for s in t.status])
    ax.set_yticks(y, [f"{r.step}" + ("" if r.status == "succeeded" else f" ({r.status})") for r in t.itertuples()],
                  fontsize=10)
    end = float((t.start_s + t.seconds.astype(float)).max())
    for yy, r in zip(y, t.itertuples()):
        ax.text(r.start_s + float(r.seconds) + end * 0.01, yy, seconds_label(r.seconds), va="center", fontsize=9)
    ax.set_xlim(0, end * 1.15)
    ax.set_xlabel("seconds since the run started", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def timeline_alt(run: RunData) -> str:
    """Alt text of the timeline chart: what it shows, in one sentence a screen reader can say."""
    t = timeline(run)
    t = t[t.seconds.notna()]
    if t.empty:
        return "Stage timeline: no stage finished."
    parts = [f"{r.step} {seconds_label(r.seconds)} ({r.status})" for r in t.itertuples()]
    return "Stage timeline, one bar per step from its start to its end: " + "; ".join(parts) + "."


# -- headline -------------------------------------------------------------------------------------
def _table_dates(snapshot: Optional[dict]) -> tuple[int, int, int, int]:
    """(open table-dates: missing, failed or blocked; tables with one; waived; stale) of a snapshot."""
    f = _snapshot_frame(snapshot)
    if f.empty:
        return 0, 0, 0, 0
    count = lambda *states: f.states.map(lambda m: sum(st in states for st in m.values()))  # noqa: E731
    open_ = count("missing", "failed", "blocked")
    return int(open_.sum()), int(f[open_ > 0].table.nunique()), int(count("waived").sum()), int(count("stale").sum())


def _restated(run: RunData) -> int:
    """Table-dates stale before the run and present after it (rebuilt from the current inputs)."""
    return sum(len(v) for v in _closed(run, {"stale"}).values())


def key_figures(run: RunData) -> dict[str, Any]:
    """The numbers the headline is made of (plain ints; None when the run has no such stage)."""
    before_missing, before_tables, _, before_stale = _table_dates(run.before)
    after_missing, after_tables, waived, stale = _table_dates(run.after)
    closed = _closed(run, {"missing", "failed", "blocked"})  # stale -> present is "restated", below
    fl = run.failures
    recovered = int(fl["resolved"].map(_resolved).sum()) if not fl.empty and "resolved" in fl else 0
    still = len(_failed_dates(run))
    grade = run.record("grade")
    seconds, n_attempts = run_time(run)
    return {
        "status": _status(run), "has_before": run.before is not None, "has_after": run.after is not None,
        "missing_before": before_missing, "tables_before": before_tables, "restated": _restated(run),
        "closed": sum(len(v) for v in closed.values()),
        "tables_closed": len({table for _, table, _ in closed}),
        "open": after_missing, "tables_open": after_tables, "waived": waived, "stale": stale,
        "waived_in_run": _waived_in_run(run) if run.after is not None else 0,
        "failures_recovered": recovered, "failures_open": still,
        "findings_open": int(findings_open(run)["count"].sum()) if run.after else 0,
        "graded": graded_total(run), "graded_by_run": grade.get("graded") if isinstance(grade.get("graded"), int) else None,
        "graded_dates": grade.get("dates") if isinstance(grade.get("dates"), int) else None,
        "graded_rows_written": (grade.get("rows_written") or {}).get(GRADED_TABLE) if grade else None,
        "seconds": seconds, "attempts": n_attempts, "override": _gate_override(run),
        "stopped_at": run.manifest.get("stopped_at"), "reason": strip_paths(run.manifest.get("reason"), run.run_dir),
    }


def headline(run: RunData) -> str:
    """One sentence that says what happened, e.g. "All 1,233 missing table-dates closed in 9
    tables; 0 open; 1 load failure recovered by retry"."""
    return headline_text(key_figures(run), findings_open(run).to_dict("records") if run.after else [])


def headline_text(k: dict[str, Any], findings: list[dict]) -> str:
    """The headline from the key figures (``key_figures``) and the open check findings alone: the
    wording ``docs/report.json`` records for the screenshots, checked against the current renderer."""
    parts = []
    if k["stopped_at"] or k["status"] in ("failed", "blocked", "interrupted"):
        where = f" at {k['stopped_at']}" if k["stopped_at"] else ""
        parts.append(f"Run {k['status']}{where}" + (f": {k['reason']}" if k["reason"] else ""))
    if not k["has_before"] and not k["has_after"]:
        parts.append("no completeness snapshot in this run")
    elif not k["has_after"]:
        parts.append(f"{plural(k['missing_before'], 'missing table-date')} found in "
                     f"{plural(k['tables_before'], 'table')}; {count_label(k['closed'])} confirmed closed (no after snapshot)")
    elif k["missing_before"] == 0 and k["open"] == 0:
        parts.append("Nothing was missing: every expected table-date was already present" if not (k["stale"] or k["restated"])
                     else "No table-date was missing")
    elif k["open"] == 0 and k["stale"] == 0 and not k["waived_in_run"]:
        parts.append(f"All {plural(k['closed'], 'missing table-date')} closed in {plural(k['tables_closed'], 'table')}; 0 open")
    else:  # a date waived during the run is reviewed, not closed: it is counted apart
        waived = f", {count_label(k['waived_in_run'])} waived" if k["waived_in_run"] else ""
        parts.append(f"{count_label(k['closed'])} closed{waived} of {plural(k['missing_before'], 'missing table-date')} in "
                     f"{plural(k['tables_before'], 'table')}; {count_label(k['open'])} open in {plural(k['tables_open'], 'table')}")
    if k["restated"]:
        parts.append(f"{plural(k['restated'], 'stale table-date')} rebuilt")
    if k["has_after"] and k["stale"]:
        parts.append(f"{plural(k['stale'], 'stale table-date')} (present but built from changed inputs)")
    if k["has_after"] and k["waived"] > k["waived_in_run"]:  # waived during the run: counted above
        more = " more" if k["waived_in_run"] else ""
        parts.append(f"{count_label(k['waived'] - k['waived_in_run'])}{more} waived")
    if k["failures_recovered"]:
        parts.append(f"{plural(k['failures_recovered'], 'load failure')} recovered by retry")
    if k["failures_open"]:
        parts.append(f"{plural(k['failures_open'], 'load failure')} still failing")
    if k["findings_open"] and not k["stopped_at"]:  # a stopped run's reason already names them
        parts.append(f"{plural(k['findings_open'], 'check finding')} open after the run ("
                     + ", ".join(f"{r['check']} in {r['table']}" for r in findings) + ")")
    if k["override"]:
        parts.append(f"gate overridden: {k['override']}")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def key_figures_list(run: RunData, k: Optional[dict[str, Any]] = None) -> list[tuple[str, str]]:
    """(big number, what it counts) pairs shown under the headline (from ``k`` when given)."""
    k = k if k is not None else key_figures(run)
    out = [(count_label(k["closed"]), "table-dates closed"), (count_label(k["tables_closed"]), "tables filled")]
    if k["has_after"]:
        out.append((count_label(k["open"]), "still open"))
        if k["stale"]:
            out.append((count_label(k["stale"]), "stale"))
        if k["waived"]:
            out.append((count_label(k["waived"]), "waived"))
    if k["findings_open"]:
        out.append((count_label(k["findings_open"]), "check findings open"))
    out.append((count_label(k["failures_recovered"] + k["failures_open"]), "load failures"))
    if k["graded"] is not None:
        out.append((count_label(k["graded"]), "graded predictions (player-game × system)"))
    if k["seconds"] is not None:
        out.append((seconds_label(k["seconds"]),
                    "run time" if k["attempts"] <= 1 else f"run time, {k['attempts']} attempts summed"))
    return out


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
    body = ["| " + " | ".join((", ".join(map(str, v)) if isinstance(v, list) else str(v)).replace("|", "\\|")
                              for v in row) + " |" for row in f.to_numpy()]
    return "\n".join([head, sep, *body])


def summary_markdown(run: RunData) -> str:
    """A short summary to paste into a ticket: the headline first, paths relative to the archive."""
    lines = [f"# Backfill run `{run.run_id}` — {_status(run)}", "", f"**{headline(run)}**", ""]
    h = run_header(run)
    lines += [f"- **{k}**: {v}" for k, v in h["value"].items() if k not in ("run",)]
    ps = phase_summary(run)
    if not ps.empty:
        shown = ps.copy()
        for c in shown.columns:
            shown[c] = shown[c].map(pct_label) if c.endswith("%") else shown[c].map(count_label)
        lines += ["", "## Completeness by phase (% of expected table-dates present)", "", _md_table(shown.rename_axis("phase"))]
    cs = closed_by_stage(run)
    if not cs.empty:
        lines += ["", "## Dates closed", "", _md_table(cs, index=False)]
    op = dates_open_grouped(run)
    lines += ["", "## Still open", ""]
    if not op.empty:
        op = op.assign(season=op.season.map(season_label))
        lines += [_md_table(op, index=False)]
    else:
        lines += ["nothing: every expected date is present in every table"] if run.after else \
            ["unknown: no after snapshot (the run stopped early)"]
    fo = findings_open(run)
    if not fo.empty:
        lines += ["", "## Checks still failing (rows that cannot be true; open until fixed or waived)", "",
                  _md_table(fo, index=False)]
    steps = timeline_table(run)
    if not steps.empty:
        lines += ["", "## Stages", "", _md_table(steps, index=False)]
    tries = attempts_table(run)
    if len(tries) > 1:
        lines += ["", f"## Attempts (run time {seconds_label(run_time(run)[0])}, summed)", "", _md_table(tries, index=False)]
    hand = by_hand(run)
    if not hand.empty:
        lines += ["", "## Stages run by hand before this run", "", _md_table(hand.fillna(""), index=False)]
    wv = dates_waived(run)
    if not wv.empty:
        lines += ["", "## Waived (reviewed, not open)", "", _md_table(wv[["table", "season", "dates", "ranges", "reason"]], index=False)]
    fl = failures(run)
    if not fl.empty:
        n = fl.status.value_counts()
        lines += ["", f"## Failures ({plural(len(fl), 'failed attempt')}: {count_label(int(n.get('resolved', 0)))} "
                      f"resolved, {count_label(int(n.get('waived', 0)))} waived, {count_label(int(n.get('open', 0)))} open)", "",
                  _md_table(fl.drop(columns=["status", "resolved_by"]).head(20), index=False)]
        if len(fl) > 20:
            lines.append(f"\n… and {count_label(len(fl) - 20)} more in `failures.csv`")
    gate = _gate_override(run)
    if gate:
        lines += ["", f"**Gate override**: {gate}"]
    lines += ["", "Report: `report.html` in this run's archive", ""]
    return "\n".join(lines)


def write_summary(run_dir: str | Path) -> Path:
    run = load_run(run_dir)
    from .archive import write_atomic

    return write_atomic(Path(run_dir) / "summary.md", summary_markdown(run))
