"""Bench part ``bigquery``: how many BigQuery jobs a backfill issues, and what a user waits.

Each BigQuery job carries about a second of latency whatever its size, so on BigQuery the
number of round trips, not the bytes, decides a backfill's wall time. This part runs the
writing stages (load, gate, derive, predict, grade: the calls the stage notebooks make) with
``backend: bigquery`` against the loopback server (``tests/bqserver``, in this process, its
ZetaSQL check off) and counts the jobs it receives (query and load jobs; dry runs are free
and not counted). Keys:

* ``bq_backfill_jobs``: a from-empty backfill: the bucket's files, an empty warehouse;
* ``bq_backfill_wall_s``: what that backfill would take at 1 s per job, computed as
  ``jobs x 1 s + the measured run time`` (the loopback server adds no latency here);
* ``bq_backfill_jobs_by_stage``: the same jobs by their ``stage`` label;
* ``bq_incremental_jobs`` / ``bq_incremental_jobs_by_stage``: the demo's own run: its
  before state on BigQuery, then the stages fill the holes;
* ``bq_incremental_plan_jobs_by_stage``: what ``runbook plan`` estimated for that run
  (``nbcore.jobs_estimate``), to compare with ``bq_incremental_jobs_by_stage``;
* ``bq_*_jobs_by_step``: the same jobs by ``stage/step`` label (which SQL file or table);
* ``BENCH_BQ_RUNS=backfill`` (or ``incremental``) measures only that run;
* ``bq_backfill_tables_match_duckdb``: the same stages from the same bucket on DuckDB give the
  same tables (``bq_backfill_tables_differing`` lists any that differ; ``BENCH_BQ_COMPARE=0``
  skips this);
* ``bq_scale``: the demo scale measured (``BENCH_BQ_SCALE``, default ``full``), ``bq_chunk_days``.
"""
from __future__ import annotations

import os
import shutil
import time
from collections import Counter

JOB_LATENCY_S = 1.0


def _server(**kwargs):
    try:
        from tests.bqserver import BigQueryLoopback
    except ImportError as e:  # pragma: no cover - the bench runs from a checkout
        raise RuntimeError(f"the bigquery bench needs the loopback server from the checkout (tests/bqserver): {e}")
    return BigQueryLoopback(min_bytes_per_table=0, zetasql=False, **kwargs)


def _stages(params) -> None:
    """The writing stages as ``runbook run`` runs them: the plan first (``plan.json`` in an
    archive, jobs labelled ``plan``), then each stage executing it, labelled with its stage as the
    runbook driver does (``RUNBOOK_STAGE``), so jobs count by the stage that sent them."""
    from .. import derive, gate, grade, predict
    from ..archive import RunArchive, unique_run_id
    from ..load import run_load
    from ..plan import plan_run

    archive = RunArchive.create(params, unique_run_id(params.archive_dir, params.run_name))
    steps = [("plan", lambda: archive.write_json("plan.json", {"plan_id": "bench", "made_at": "",
                                                               **plan_run(params).to_json()})),
             ("load", lambda: run_load(params)),
             ("gate", lambda: gate.run_gate(params, raise_on_block=False)),
             ("derive", lambda: derive.run_derive(params, archive=archive, skip_dates=derive.waived_skip_dates(params),
                                                  progress=False)),
             ("predict", lambda: predict.run_predict(params, archive=archive)),
             ("grade", lambda: grade.run_grade(params, archive=archive))]
    before = os.environ.get("RUNBOOK_STAGE")
    try:
        for stage, fn in steps:
            os.environ["RUNBOOK_STAGE"] = stage
            fn()
    finally:
        if before is None:
            os.environ.pop("RUNBOOK_STAGE", None)
        else:
            os.environ["RUNBOOK_STAGE"] = before


def _write_bucket(params) -> None:
    from pathlib import Path

    from ..demo.build import write_bucket
    from ..demo.holes import choose_holes
    from ..demo.league import generate_league

    league = generate_league(params.demo.seed, params.demo.scale)
    holes = choose_holes(league.schedule, params.demo.seed, params.demo.scale, params.demo.transient_faults)
    if league.quirks:
        for source, days in (*league.quirks.no_lines.items(), *league.quirks.no_files.items()):
            holes.source_gaps[source] = sorted(set(holes.source_gaps.get(source, [])) | set(days))
    write_bucket(league, Path(params.bucket), holes, progress=False)


def _by_stage(server, since: int) -> dict[str, int]:
    jobs = server.jobs()[since:]
    return dict(sorted(Counter((j["configuration"].get("labels") or {}).get("stage", "?") for j in jobs).items()))


def _by_step(server, since: int) -> dict[str, int]:
    """Jobs by ``stage/step`` label (the SQL file or table written): where the round trips go."""
    jobs = server.jobs()[since:]
    keys = Counter(f"{(j['configuration'].get('labels') or {}).get('stage', '?')}/"
                   f"{(j['configuration'].get('labels') or {}).get('step', '?')}" for j in jobs)
    return dict(sorted(keys.items(), key=lambda kv: (-kv[1], kv[0])))


def _compare_with_duckdb(ctx, root, bq_params) -> dict:
    """The same stages from the same bucket on DuckDB: do the two warehouses hold the same
    tables (checksums of every pipeline table, audit columns aside)? ``BENCH_BQ_COMPARE=0`` skips."""
    if os.environ.get("BENCH_BQ_COMPARE", "1") == "0":
        return {}
    from ..params import build_params
    from ..warehouse import open_warehouse

    data = ctx.params.public_dict()
    data.update(backend="duckdb", duckdb_path=str(root / "compare.duckdb"), run_name="bench-bq-compare",
                archive_dir=str(root / "runs_duckdb"), bucket=str(bq_params.bucket),
                demo={"scale": bq_params.demo.scale, "seed": bq_params.demo.seed})
    duck = build_params(data, "bench", root)
    with open_warehouse(duck) as wh:
        wh.ensure_schema()
    _stages(duck)
    with open_warehouse(duck) as wh:
        want = wh.checksums()
    with open_warehouse(bq_params) as wh:
        got = wh.checksums(sorted(want))
    differing = sorted(t for t in want if want[t] != got.get(t))
    return {"bq_backfill_tables_match_duckdb": not differing, "bq_backfill_tables_differing": differing,
            "bq_backfill_tables_compared": len(want)}


def _count(server) -> int:
    c = server.job_counts()
    return c["query"] + c["load"]


def run(ctx) -> dict:
    from ..demo.build import build_demo
    from ..warehouse import open_warehouse

    scale = os.environ.get("BENCH_BQ_SCALE", ctx.params.demo.scale)
    root = ctx.root / "bench-bigquery"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    out: dict = {"bq_scale": scale}
    with _server() as srv:
        def params_for(suffix: str):
            data = ctx.params.public_dict()
            data.update(backend="bigquery", run_name=f"bench-bq{suffix}", archive_dir=str(root / f"runs{suffix}"),
                        bucket=str(root / "bucket"), demo={"scale": scale, "seed": ctx.params.demo.seed},
                        bigquery={"project": "bench-project", "dataset_suffix": suffix,
                                  "api_endpoint": srv.endpoint})
            from ..params import build_params

            return build_params(data, "bench", root)

        runs = os.environ.get("BENCH_BQ_RUNS", "incremental,backfill").split(",")
        if "incremental" in runs:
            # the demo's incremental run: before state (holes) on BigQuery, then the stages
            inc = params_for("_inc")
            build_demo(inc, progress=False)
            from ..plan import plan_run

            out["bq_incremental_plan_jobs_by_stage"] = plan_run(inc).jobs  # the plan's estimate, before the run
            n0, k0 = _count(srv), len(srv.jobs())
            _stages(inc)
            out["bq_incremental_jobs"] = _count(srv) - n0
            out["bq_incremental_jobs_by_stage"] = _by_stage(srv, k0)
            out["bq_incremental_jobs_by_step"] = _by_step(srv, k0)
        if "backfill" not in runs:
            return out
        if "incremental" not in runs:  # the bucket alone: the league's files, no warehouse
            _write_bucket(params_for("_empty"))

        # from empty: the same bucket, an empty warehouse
        full = params_for("_empty")
        with open_warehouse(full) as wh:
            wh.ensure_schema()
        n0, k0 = _count(srv), len(srv.jobs())
        t = time.perf_counter()
        _stages(full)
        measured = time.perf_counter() - t
        jobs = _count(srv) - n0
        out.update(
            bq_backfill_jobs=jobs,
            bq_backfill_jobs_by_stage=_by_stage(srv, k0),
            bq_backfill_jobs_by_step=_by_step(srv, k0),
            bq_backfill_wall_s=round(jobs * JOB_LATENCY_S + measured, 1),
            bq_backfill_note=(f"{jobs} jobs x {JOB_LATENCY_S:.0f} s + {measured:.1f} s measured on the loopback "
                              f"server (no latency added); chunk_days={full.chunk_days}"),
            bq_chunk_days=full.chunk_days,
        )
        out.update(_compare_with_duckdb(ctx, root, full))  # after the counts: its reads are not the backfill's
    return out
