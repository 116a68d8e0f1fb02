"""What became of a run's load failures and gaps: still open, fixed later, or waived.

A run's ``failures.csv`` is written once, by its load stage. The README's recovery flow fixes
things *after* that: ``runbook load --retry-failed RUN_ID`` (a separate load with its own
archive) reloads the failed dates, a waiver file is written, then ``runbook resume RUN_ID``
goes on. So one archive cannot say what is still open. The truth is elsewhere:

* ``processor_run_history``: a failure of (source, date) is **resolved** when that source's
  latest phase 2 run for that date succeeded (a retry in the same run, ``--retry-failed``, or
  any later load);
* the run's waiver file as it is *now* (the params the run resumed with): a (source, date) it
  covers is **waived**, with its reason and approver;
* otherwise it is **open**.

Everything here is keyed by (source, date), never by date alone, so one source's failure is
never blamed for another source's gap. Reading never fails a report: without a warehouse or
waiver file the archive's own ``resolved`` column is used.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional

import pandas as pd

from .params import RunParams
from .warehouse import Warehouse
from .waivers import WaiverIndex

STATUS_COLUMNS = ["status", "resolved_by"]


def _day(v) -> Optional[date]:
    if v is None or (isinstance(v, float) and pd.isna(v)) or str(v).strip() in ("", "nan", "None"):
        return None
    try:
        return pd.Timestamp(v).date()
    except (ValueError, TypeError):
        return None


def _truthy(v) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


def latest_loads(wh: Warehouse, pairs: set[tuple[str, date]]) -> dict[tuple[str, date], dict]:
    """(source, date) -> its latest phase 2 run (run_id, success, error, finished_at)."""
    if not pairs:
        return {}
    days = [d for _, d in pairs]
    runs = wh.query_file("gate/latest_phase2_runs", {"processors": sorted({s for s, _ in pairs}),
                                                       "start_date": min(days), "end_date": max(days)})
    out = {}
    for r in runs.to_dict("records"):
        key = (str(r["processor"]), pd.Timestamp(r["data_date"]).date())
        if key in pairs:
            out[key] = r
    return out


def failure_status(failures: pd.DataFrame, wh: Warehouse | None = None,
                   waivers: WaiverIndex | None = None) -> pd.DataFrame:
    """``failures`` (rows of failures.csv) with ``status`` (open / resolved / waived) and ``resolved_by``."""
    if failures is None or failures.empty:
        return pd.DataFrame(columns=list(getattr(failures, "columns", [])) + STATUS_COLUMNS)
    f = failures.copy()
    days = [_day(v) for v in f.get("date", pd.Series([None] * len(f)))]
    pairs = {(str(s), d) for s, d in zip(f.source, days) if d is not None}
    latest: dict = {}
    if wh is not None:
        try:
            latest = latest_loads(wh, pairs)
        except Exception:  # noqa: BLE001 - looking never breaks a report
            latest = {}
    status, by = [], []
    for r, d in zip(f.to_dict("records"), days):
        src = str(r.get("source"))
        w = waivers.for_date(src, d) if waivers is not None and d is not None else None
        run = latest.get((src, d)) if d is not None else None
        if run is not None and bool(run["success"]):
            status.append("resolved")
            by.append(f"loaded by run {run['run_id']}")
        elif w is not None:
            status.append("waived")
            by.append(f"{w.reason} (approved by {w.approved_by})")
        elif _truthy(r.get("resolved")) and run is None:
            status.append("resolved")
            by.append("a retry in the same run")
        else:
            status.append("open")
            by.append(None)
    f["status"] = status
    f["resolved_by"] = pd.Series(by, index=f.index, dtype=object)  # None stays None (no NaN) for the open ones
    return f


def open_failures(failures: pd.DataFrame, wh: Warehouse | None = None, waivers: WaiverIndex | None = None) -> pd.DataFrame:
    """The failures nothing has fixed or waived since: what ``--retry-failed`` would still retry."""
    s = failure_status(failures, wh, waivers)
    return s[s.status == "open"] if len(s) else s


def waived_pairs(waivers: WaiverIndex | None, gate_record: dict | None = None,
                 load_record: dict | None = None) -> dict[tuple[str, date], str]:
    """(source, date) -> "reason (approved by who)": the waiver file, then what the stages recorded."""
    out: dict[tuple[str, date], str] = {}
    for w in (gate_record or {}).get("waived") or []:
        d = _day(w.get("date"))
        if d is not None and not w.get("game_id") and (w.get("check") in (None, "complete against the schedule")):
            out[(str(w.get("source")), d)] = f"{w.get('reason')} (approved by {w.get('approved_by')})"
    for w in (load_record or {}).get("waived_dates") or []:
        d = _day(w.get("date"))
        if d is not None:
            out.setdefault((str(w.get("source")), d), str(w.get("reason") or "waived"))
    if waivers is not None:
        for (src, d), w in waivers.items():
            out[(src, d)] = f"{w.reason} (approved by {w.approved_by})"
    return out


# -- for a run archive (the report) -------------------------------------------------------------

def run_params(run_dir: Path) -> Optional[RunParams]:
    """The parameters the run last ran (or resumed) with, from its archive; None if unreadable."""
    from .params import load_params

    try:
        return load_params(Path(run_dir) / "params.yaml", {"archive_dir": str(Path(run_dir).parent)})
    except Exception:  # noqa: BLE001 - an old or partial archive: fall back to the archive alone
        return None


class RunResolutions:
    """A run's failures and waivers as they stand now (history + current waiver file)."""

    def __init__(self, run_dir: Path, failures: pd.DataFrame, gate_record: dict | None = None,
                 load_record: dict | None = None, params: RunParams | None = None):
        self.params = params or run_params(run_dir)
        self.waivers: WaiverIndex | None = None
        wh = None
        try:
            if self.params is not None:
                from .waivers import waived
                from .warehouse import open_warehouse

                wh = open_warehouse(self.params, read_only=True)
                self.waivers = waived(self.params, wh)
        except Exception:  # noqa: BLE001 - looking never breaks a report
            wh = None
        try:
            self.failures = failure_status(failures, wh, self.waivers)
        finally:
            if wh is not None:
                wh.close()
        self.waived = waived_pairs(self.waivers, gate_record, load_record)

    def open_by_pair(self) -> dict[tuple[str, date], str]:
        """(source, date) -> "load failed (source): reason", for failures still open."""
        out: dict[tuple[str, date], str] = {}
        f = self.failures
        for r in f[f.status == "open"].to_dict("records") if len(f) else []:
            d = _day(r.get("date"))
            if d is not None:
                src = str(r.get("source") or "")
                out[(src, d)] = f"load failed ({src}): {r.get('reason') or ''}".strip()
        return out
