"""Bench part ``status``: ``runbook status`` against its floor, in the same run (issue 21).

A read-only command a person runs to look mid-backfill should cost little more than the one query
it needs. Keys:

* ``status_s``: wall time of the whole ``runbook status --params FILE`` process on the full demo
  (process start to exit, as an operator runs it; the median of 3 runs, each listed in
  ``status_runs_s``);
* ``status_floor_s``: one DuckDB query computing the same matrix (every tracked table x expected
  game date: games present vs expected, rows; ``sql/state/status_floor.sql``), from opening the
  file read-only to the last row fetched, SQL translated beforehand (the median of 3);
* ``status_ratio``: ``status_s / status_floor_s`` (the goal is at most 2).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

RUNS = 3


def floor_sql() -> str:
    """The floor's DuckDB text: the generated present_games as a CTE, then ``state/status_floor``."""
    from ..sqlfiles import read_sql, to_duckdb

    return to_duckdb(f"WITH present_games AS (\n{read_sql('validate/present_games')}\n),\n{read_sql('state/status_floor')}")


def floor_query(params) -> tuple[float, int]:
    """(seconds, rows) of the one query: connect read-only, run, fetch every row."""
    import duckdb

    from .. import schema

    sql = floor_sql()
    start, end = params.date_bounds()
    args = {"seasons": params.season_list, "start_date": start, "end_date": end,
            "tables": [t.name for t in schema.tracked_tables()]}
    t0 = time.perf_counter()
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        rows = con.execute(sql, args).fetchall()
    finally:
        con.close()
    return time.perf_counter() - t0, len(rows)


def run(ctx) -> dict:
    params = ctx.params
    if "demo" not in ctx.state:  # run alone (``python -m nbcore.bench status``): build the demo first
        from ..demo.build import build_demo

        ctx.state["demo"] = build_demo(params, progress=False)
    pfile = Path(ctx.root) / "bench-status.yaml"
    pfile.write_text(yaml.safe_dump(params.public_dict(), sort_keys=False))
    runbook = Path(sys.executable).parent / "runbook"
    command = [str(runbook)] if runbook.exists() else [sys.executable, "-m", "nbcore.cli"]
    walls = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run([*command, "status", "--params", str(pfile)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t0)
    floors = [floor_query(params) for _ in range(RUNS)]
    status_s = statistics.median(walls)
    floor_s = statistics.median(s for s, _ in floors)
    return {
        "status_s": round(status_s, 3),
        "status_runs_s": [round(w, 3) for w in walls],
        "status_floor_s": round(floor_s, 3),
        "status_floor_rows": floors[0][1],
        "status_ratio": round(status_s / floor_s, 2) if floor_s else None,
    }
