"""Bench part ``status``: ``runbook status`` against its floor, in the same run (issue 21).

A read-only command a person runs to look mid-backfill should cost little more than the one query
it needs. Both sides are measured the same way, as a whole process from start to exit, because
that is what a person waits for: a floor measured in-process (no interpreter start, no import of
duckdb) would make any command look many times slower than it is. Keys:

* ``status_s``: wall time of the whole ``runbook status --params FILE`` process on the full demo
  (process start to exit, as an operator runs it; the median of 3 runs, each listed in
  ``status_runs_s``);
* ``status_floor_s``: a fresh ``python`` process (the same interpreter) that imports duckdb,
  opens the demo file read-only, runs the one query computing the same matrix (every tracked
  table x expected game date: games present vs expected, rows; ``sql/state/status_floor.sql``)
  and fetches every row, from process start to exit (the median of 3). The query's DuckDB text
  is translated beforehand and handed to the process in a file: the floor pays for starting
  Python, importing duckdb, opening the file and the query, nothing of the runbook's own;
* ``status_floor_inprocess_s``: the same query inside this process (connect, run, fetch; no
  interpreter start, no import): what the query alone costs;
* ``status_ratio``: ``status_s / status_floor_s`` (the goal is at most 2).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import yaml

RUNS = 3

#: what the floor process runs: import duckdb, open read-only, one query, fetch every row
FLOOR_PROGRAM = """
import json, sys
from datetime import date
import duckdb
sql = open(sys.argv[1]).read()
args = json.loads(open(sys.argv[2]).read())
for k in ("start_date", "end_date"):
    args[k] = date.fromisoformat(args[k])
con = duckdb.connect(sys.argv[3], read_only=True)
rows = con.execute(sql, args).fetchall()
con.close()
print(len(rows))
"""


def floor_sql() -> str:
    """The floor's DuckDB text: the generated present_games as a CTE, then ``state/status_floor``."""
    from ..sqlfiles import read_sql, to_duckdb

    return to_duckdb(f"WITH present_games AS (\n{read_sql('validate/present_games')}\n),\n{read_sql('state/status_floor')}")


def floor_args(params) -> dict:
    """The floor query's parameters (the params' seasons and date window, every tracked table)."""
    from .. import schema

    start, end = params.date_bounds()
    return {"seasons": params.season_list, "start_date": start, "end_date": end,
            "tables": [t.name for t in schema.tracked_tables()]}


def floor_query(params) -> tuple[float, int]:
    """(seconds, rows) of the one query in this process: connect read-only, run, fetch every row."""
    import duckdb

    sql, args = floor_sql(), floor_args(params)
    t0 = time.perf_counter()
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        rows = con.execute(sql, args).fetchall()
    finally:
        con.close()
    return time.perf_counter() - t0, len(rows)


def floor_process(params, root: Path) -> tuple[float, int]:
    """(seconds, rows) of the floor as a whole process: ``python -c FLOOR_PROGRAM`` from start to exit."""
    sql_file, args_file = Path(root) / "status-floor.sql", Path(root) / "status-floor-args.json"
    sql_file.write_text(floor_sql())
    args_file.write_text(json.dumps(floor_args(params), default=lambda o: o.isoformat() if isinstance(o, date) else str(o)))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", FLOOR_PROGRAM, str(sql_file), str(args_file), str(params.duckdb_path)],
                         capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, int(out.stdout.split()[-1])  # after any progress bar DuckDB drew


def run(ctx) -> dict:
    params = ctx.params
    if "demo" not in ctx.state:  # run alone (``python -m nbcore.bench status``): build the demo first
        from ..demo.build import build_demo

        ctx.state["demo"] = build_demo(params, progress=False)
    pfile = Path(ctx.root) / "bench-status.yaml"
    pfile.write_text(yaml.safe_dump(params.public_dict(), sort_keys=False))
    runbook = Path(sys.executable).parent / "runbook"
    command = [str(runbook)] if runbook.exists() else [sys.executable, "-m", "nbcore.cli"]
    walls, floors = [], []
    for _ in range(RUNS):  # interleaved, so a burst of load elsewhere weighs on both sides alike
        t0 = time.perf_counter()
        subprocess.run([*command, "status", "--params", str(pfile)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t0)
        floors.append(floor_process(params, Path(ctx.root)))
    inprocess = [floor_query(params) for _ in range(RUNS)]
    status_s = statistics.median(walls)
    floor_s = statistics.median(s for s, _ in floors)
    return {
        "status_s": round(status_s, 3),
        "status_runs_s": [round(w, 3) for w in walls],
        "status_floor_s": round(floor_s, 3),
        "status_floor_runs_s": [round(s, 3) for s, _ in floors],
        "status_floor_inprocess_s": round(statistics.median(s for s, _ in inprocess), 3),
        "status_floor_rows": floors[0][1],
        "status_ratio": round(status_s / floor_s, 2) if floor_s else None,
    }
