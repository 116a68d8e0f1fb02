"""``python -m nbcore.bench profile``: where the time of a full-demo run and of a restatement goes.

Not a figure to gate on but the map to read before optimising (issue 21). Three scenarios on
copies of the full demo's before state:

* ``run``: ``runbook run`` as an operator runs it, its kernels profiling themselves
  (``RUNBOOK_PROFILE``): per step, the step's wall time, kernel start-up and papermill
  (``kernel_overhead_s``), and inside the stage: SQL compute, change comparison, lineage,
  history, commits, other SQL, and Python (the rest);
* ``restate``: after loading the holes, derive + predict + grade in-process (what ``converge``
  times as ``restate_s``);
* ``rebuild``: the same three stages from empty derived tables (``rebuild_s``).

Tables go to stderr (stdout stays one JSON object); the JSON keys ``profile_run``,
``profile_restate`` and ``profile_rebuild`` hold the same rows.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .. import profiling
from . import fresh_model_cache

COLUMNS = ("wall_s", "kernel", *profiling.PARTS, "python", "statements")


def _demo(ctx):
    if "demo" not in ctx.state:
        from ..demo.build import build_demo

        ctx.state["demo"] = build_demo(ctx.params, progress=False)
    return ctx.state["demo"]


def profile_run(ctx) -> list[dict]:
    """``runbook run`` on a copy of the demo, every kernel profiling itself."""
    from ..predict import model_cache

    root = Path(ctx.root) / "profile-run"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    copy = root / "warehouse.duckdb"
    shutil.copy(ctx.params.duckdb_path, copy)
    data = ctx.params.public_dict()
    data.update(duckdb_path=str(copy), archive_dir=str(root / "runs"), run_name="bench-profile")
    pfile = root / "params.yaml"
    pfile.write_text(yaml.safe_dump(data, sort_keys=False))
    env = dict(os.environ, **{profiling.ENV: "1"})
    t = time.perf_counter()
    with fresh_model_cache(ctx, "profile-run", from_demo=True):
        env[model_cache.ENV] = os.environ[model_cache.ENV]
        subprocess.run([sys.executable, "-m", "nbcore.cli", "run", "--params", str(pfile)], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t
    run_dir = next((d for d in (root / "runs").iterdir() if (d / "manifest.json").exists()), None)
    if run_dir is None:
        raise RuntimeError(f"profile: runbook run left no manifest under {root / 'runs'}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rows = []
    for step in manifest.get("stages", []):
        name = step["name"]
        f = run_dir / "profile" / f"{name}.json"
        inner = json.loads(f.read_text()) if f.exists() else {}
        row = {"stage": name, "wall_s": step.get("seconds"), "kernel": step.get("kernel_overhead_s")}
        row.update({k: inner.get(k) for k in (*profiling.PARTS, "python", "statements")})
        rows.append(row)
    steps = sum(r["wall_s"] or 0 for r in rows)
    rows.append({"stage": "(driver: plan, locks, archive)", "wall_s": round(wall - steps, 2)})
    rows.append({"stage": "total", "wall_s": round(wall, 2), "kernel": round(sum(r.get("kernel") or 0 for r in rows), 2)})
    return rows


def profile_restate(ctx) -> tuple[list[dict], list[dict]]:
    """The converge bench's restatement and rebuild, in-process, profiled."""
    from .. import convergence
    from ..derive import run_derive, waived_skip_dates
    from ..grade import run_grade
    from ..load import run_load
    from ..predict import run_predict

    root = Path(ctx.root) / "profile-restate"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    copy = root / "backfilled.duckdb"
    shutil.copy(ctx.params.duckdb_path, copy)
    p = ctx.params.model_copy(update={"duckdb_path": copy, "run_name": "bench-profile"})
    run_load(p, progress=False)
    with fresh_model_cache(ctx, "profile-restate", from_demo=True), profiling.active() as prof:
        with profiling.stage("derive"):
            run_derive(p, progress=False, skip_dates=waived_skip_dates(p))
        with profiling.stage("predict"):
            run_predict(p, progress=False)
        with profiling.stage("grade"):
            run_grade(p, progress=False, metrics=False)
    restate = _with_total(prof.rows())
    with fresh_model_cache(ctx, "profile-rebuild"), profiling.active() as prof:
        convergence.rebuild_from_raw(p, root / "rebuild", chunk_days=p.chunk_days)
    return restate, _with_total(prof.rows())


def _with_total(rows: list[dict]) -> list[dict]:
    total = {"stage": "total"}
    for k in ("wall_s", *profiling.PARTS, "python", "statements"):
        total[k] = round(sum(r.get(k) or 0 for r in rows), 2)
    return [*rows, total]


def print_table(title: str, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    for c in COLUMNS:
        table.add_column(c.replace("_s", " s"), justify="right")
    for r in rows:
        table.add_row(r["stage"], *("" if r.get(c) is None else f"{r[c]:,}" if c == "statements" else f"{r[c]:.2f}"
                                    for c in COLUMNS))
    Console(stderr=True, width=200).print(table)


def run(ctx) -> dict:
    _demo(ctx)
    run_rows = profile_run(ctx)
    print_table("profile: full-demo runbook run (seconds)", run_rows)
    restate, rebuild = profile_restate(ctx)
    print_table("profile: restatement (load, then derive + predict + grade in-process)", restate)
    print_table("profile: rebuild from raw (the same stages from empty tables)", rebuild)
    return {"profile_run": run_rows, "profile_restate": restate, "profile_rebuild": rebuild}
