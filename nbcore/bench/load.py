"""Load figures: every raw date of the full demo loaded from its phase 1 files (``reload``).

Runs on a copy of the demo warehouse so later parts see the before state untouched; the
demo's fail-once fault markers are put back afterwards for the same reason.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..load import run_load
from ..sources import FAULTS_DIR


def run(ctx) -> dict:
    params = ctx.params
    if "demo" not in ctx.state:  # run alone (``python -m nbcore.bench load``): build the demo first
        from ..demo.build import build_demo

        ctx.state["demo"] = build_demo(params, progress=False)
    copy = Path(ctx.root) / "bench-load.duckdb"
    shutil.copy(params.duckdb_path, copy)
    faults = Path(params.bucket) / FAULTS_DIR
    saved = {p: p.read_bytes() for p in faults.rglob("*") if p.is_file()} if faults.is_dir() else {}
    try:
        p = params.model_copy(update={"duckdb_path": copy, "reload": True})
        t = time.perf_counter()
        result = run_load(p, progress=False)
        seconds = time.perf_counter() - t
    finally:
        for path, data in saved.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        copy.unlink(missing_ok=True)
    loaded = [o for o in result.outcomes if o.state == "loaded" and o.source != "nbac_schedule"]
    rows = sum(o.rows for o in loaded)
    return {
        "load_dates_per_s": round(len(loaded) / seconds, 1),
        "load_rows_per_s": round(rows / seconds),
        "load_full_reload_s": round(seconds, 2),
        "load_full_reload_dates": len(loaded),
        "load_full_reload_rows": rows,
        "load_failed": len(result.failed),
    }
