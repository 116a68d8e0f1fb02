"""Bench part ``runbook``: the whole runbook on the full demo, from an empty archive.

Runs ``runbook run`` as a subprocess (what an operator runs) on a copy of the demo warehouse,
so the before state other parts use stays untouched. Keys:

* ``runbook_wall_s``: wall time of the whole run, process start to exit;
* ``kernel_startup_s``: how much of that is kernels starting and stopping (per step: papermill's
  notebook duration minus the cells' execution time, summed over the steps);
* ``peak_rss_mb``: the peak resident memory of the largest single process of the run (the
  driver or one stage's kernel), from ``getrusage(RUSAGE_CHILDREN)`` in a wrapper process;
* ``runbook_steps_s``: seconds per step, and ``runbook_status``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from . import fresh_model_cache

_WRAPPER = """
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
"""


def run(ctx) -> dict:
    params = ctx.params
    if "demo" not in ctx.state:  # run alone (``python -m nbcore.bench runbook``): build the demo first
        from ..demo.build import build_demo

        ctx.state["demo"] = build_demo(params, progress=False)
    root = Path(ctx.root)
    copy = root / "bench-runbook.duckdb"
    shutil.copy(params.duckdb_path, copy)
    archive = root / "bench-runbook-runs"
    shutil.rmtree(archive, ignore_errors=True)
    data = params.public_dict()
    data.update(duckdb_path=str(copy), archive_dir=str(archive), run_name="bench-runbook")
    pfile = root / "bench-runbook.yaml"
    pfile.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        t0 = time.perf_counter()
        with fresh_model_cache(ctx, "runbook", from_demo=True):
            out = subprocess.run(
                [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "nbcore.cli", "run", "--params", str(pfile)],
                capture_output=True, text=True, check=True,
            )
        wall = time.perf_counter() - t0
        maxrss_kb, rc = (int(x) for x in out.stdout.split())
        runs = [d for d in archive.iterdir() if (d / "manifest.json").exists()]
        manifest = json.loads((runs[0] / "manifest.json").read_text()) if runs else {}
        steps = manifest.get("stages", [])
        return {
            "runbook_wall_s": round(wall, 2),
            "kernel_startup_s": round(sum(s.get("kernel_overhead_s") or 0 for s in steps), 2),
            "peak_rss_mb": round(maxrss_kb / 1024, 1),
            "runbook_steps_s": {s["name"]: s.get("seconds") for s in steps},
            "runbook_status": manifest.get("status", f"exit {rc}"),
        }
    finally:
        copy.unlink(missing_ok=True)
        Path(str(copy) + ".wal").unlink(missing_ok=True)
        Path(str(copy) + ".runbook-lock").unlink(missing_ok=True)
