"""Bench part ``converge``: does the demo backfill converge, and how much did it rewrite?

On a copy of the full demo's before state: load, derive, predict and grade in-process (the
stages the runbook's notebooks call), timed; then a rebuild of phases 3-5B from the same raw
tables into a second copy, timed; then both compared row for row. Keys:

* ``converge_rows_differing``: rows that differ between the backfilled warehouse and the rebuild,
  audit columns aside (must be 0), with ``converge_by_table``;
* ``restate_rows_written``: rows the backfill's derive, predict and grade inserted;
* ``restate_rows_changed``: rows whose value is new or different after the backfill (compared with
  the before state); written / changed is the over-write ratio (at most 1.25);
* ``restate_partitions`` / ``restate_partitions_unchanged``: derive's (table, date) partitions the
  backfill computed, and how many of them came out identical (work that changed nothing);
* ``restate_s`` (derive + predict + grade of the backfill) and ``rebuild_s`` (the same three
  stages from empty tables, with the run's ``chunk_days``): the incremental run must be the faster;
  ``restate_ratio`` is restate_s / rebuild_s.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from .. import convergence, schema
from . import fresh_model_cache
from ..warehouse import open_warehouse
from ..warehouse.base import row_signatures, value_columns


def _rows_new_or_changed(before, after, table: str) -> int:
    t = schema.table(table)
    cols = ", ".join(value_columns(t))
    b = row_signatures(t, before.query(f"SELECT {cols} FROM {t.fqn}")).value_counts()
    a = row_signatures(t, after.query(f"SELECT {cols} FROM {t.fqn}")).value_counts()
    diff = a.sub(b, fill_value=0)
    return int(diff[diff > 0].sum())


def run(ctx) -> dict:
    from ..derive import run_derive
    from ..grade import run_grade
    from ..load import run_load
    from ..predict import run_predict

    params = ctx.params
    if "demo" not in ctx.state:
        from ..demo.build import build_demo

        ctx.state["demo"] = build_demo(params, progress=False)
    root = Path(ctx.root) / "converge"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    copy = root / "backfilled.duckdb"
    shutil.copy(params.duckdb_path, copy)
    p = params.model_copy(update={"duckdb_path": copy, "run_name": "bench-converge"})

    run_load(p, progress=False)
    with fresh_model_cache(ctx, "restate", from_demo=True):
        return _restate_and_rebuild(ctx, params, p, root)


def _restate_and_rebuild(ctx, params, p, root) -> dict:
    from ..derive import run_derive
    from ..grade import run_grade
    from ..predict import run_predict

    seconds = {}
    t0 = time.perf_counter()
    from ..derive import waived_skip_dates

    derived = run_derive(p, progress=False, skip_dates=waived_skip_dates(p))
    seconds["derive"] = time.perf_counter() - t0
    t = time.perf_counter()
    predicted = run_predict(p, progress=False)
    seconds["predict"] = time.perf_counter() - t
    t = time.perf_counter()
    graded = run_grade(p, progress=False, metrics=False)
    seconds["grade"] = time.perf_counter() - t
    restate_s = time.perf_counter() - t0
    written = sum(sum(r.rows_written.values()) for r in (derived, predicted, graded))

    with fresh_model_cache(ctx, "rebuild"):
        rebuilt = convergence.rebuild_from_raw(p, root / "rebuild", chunk_days=p.chunk_days)
    diff = convergence.compare(p, rebuilt.params)
    with open_warehouse(params, read_only=True) as before, open_warehouse(p, read_only=True) as after:
        changed = sum(_rows_new_or_changed(before, after, t) for t in convergence.derived_tables())
    return {
        "converge_rows_differing": int(diff.rows_differing.sum()),
        "converge_by_table": {r.table: int(r.rows_differing) for r in diff.itertuples()},
        "restate_rows_written": int(written),
        "restate_rows_changed": int(changed),
        "restate_write_ratio": round(written / changed, 3) if changed else None,
        "restate_stale_dates": {k: len(v) for k, v in derived.stale_dates.items()}
        | {convergence.lineage.PREDICTIONS: len(predicted.stale_dates)},
        "restate_partitions": sum(c.detail.get("partitions", 0) for c in derived.chunks),
        "restate_partitions_unchanged": sum(c.detail.get("partitions_unchanged", 0) for c in derived.chunks),
        "restate_s": round(restate_s, 2),
        "restate_stage_s": {k: round(v, 2) for k, v in seconds.items()},
        "rebuild_s": round(rebuilt.seconds, 2),
        "restate_ratio": round(restate_s / rebuilt.seconds, 3) if rebuilt.seconds else None,
        "rebuild_stage_s": {k: round(v, 2) for k, v in rebuilt.stage_seconds.items()},
    }
