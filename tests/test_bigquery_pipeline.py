"""The whole demo runbook with ``backend: bigquery`` against the loopback server: every stage
notebook runs in its own papermill kernel, talking to BigQuery through the real clients, and
every table it leaves equals the DuckDB backend's, row for row."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from bqserver import BigQueryLoopback
from conftest import small_params
from nbcore import schema
from nbcore.demo.build import build_demo
from nbcore.runbook import run_runbook
from nbcore.validate import run_validate
from nbcore.warehouse import open_warehouse

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

SECRET = "/secrets/bq-service-account-S3CR3T-7f3a.json"
KNOWN_STAGES = {"validate", "load", "gate", "derive", "predict", "grade", "report", "adhoc",
                "lock"}  # lock: the driver's warehouse lease (nbcore.lock on BigQuery)


def _checksums(params) -> dict:
    with open_warehouse(params) as wh:
        return wh.checksums()


@pytest.fixture(scope="module")
def bq_server():
    with BigQueryLoopback() as srv:  # BigQuery's billing rules, 10 MiB minimum per table
        yield srv


@pytest.fixture(scope="module")
def bq_demo(bq_server, tmp_path_factory):
    """The small demo built on the loopback BigQuery (datasets suffixed _pipe)."""
    root = tmp_path_factory.mktemp("bq_pipeline")
    params = small_params(root, backend="bigquery", bigquery={
        "project": "demo-project", "dataset_suffix": "_pipe", "api_endpoint": bq_server.endpoint,
        "credentials_path": SECRET,  # a loopback endpoint never gets credentials; the path must still never leak
    })
    build_demo(params, progress=False)
    return params


def test_the_demo_before_state_has_the_same_rows_on_both_backends(small_demo, bq_demo):
    """Row counts here (cheap); the full row-for-row comparison is made after the whole run."""
    duck, _ = small_demo
    names = [t.fqn for t in schema.all_tables() if t.phase != "ref"]
    with open_warehouse(bq_demo) as bq, open_warehouse(duck, read_only=True) as dk:
        assert {n: bq.row_count(n) for n in names} == {n: dk.row_count(n) for n in names}


def test_validate_reads_only_the_date_and_game_columns(small_demo, bq_demo):
    """Completeness costs close to nothing: validate reads the partition state in one statement
    (``state/partition_reads``), whose present-games part bills game_date + game_id only."""
    with open_warehouse(bq_demo) as wh:
        run_validate(bq_demo, wh=wh, progress=False)
        state_reads = [j for j in wh.jobs if j["step"] == "state/partition_reads"]
        wh.query_file("validate/present_games", {"start_date": date(1900, 1, 1), "end_date": date(2999, 12, 31)})
        jobs = [j for j in wh.jobs if j["step"] == "validate/present_games"]
    assert len(state_reads) == 1
    duck, _ = small_demo
    with open_warehouse(duck, read_only=True) as dwh:
        expected = sum(
            int(dwh.query(f"SELECT COALESCE(SUM(8 + 2 + LENGTH(game_id)), 0) AS b FROM {t.fqn}").b[0])
            for t in schema.tracked_tables()
        )
    assert len(jobs) == 1
    assert jobs[0]["bytes_processed"] == expected  # every row, 2 columns: nothing else is read
    assert state_reads[0]["bytes_processed"] >= expected  # the one statement holds that read


@pytest.fixture(scope="module")
def runs(full_run, bq_demo):
    """The whole runbook on BigQuery, and the checksums of the same run on DuckDB (conftest.full_run)."""
    bq = run_runbook(bq_demo, echo=None)
    return full_run[3], bq


def test_the_whole_runbook_on_bigquery_equals_duckdb(runs, bq_demo):
    want, bq = runs
    assert (bq.status, bq.exit_code) == ("succeeded", 0), bq.describe()
    m = json.loads((bq.run_dir / "manifest.json").read_text())
    assert all(s["status"] == "succeeded" for s in m["stages"]), [(s["name"], s["status"], s["error"]) for s in m["stages"]]
    assert m["params"]["backend"] == "bigquery"
    got = _checksums(bq_demo)
    assert got == want, {t: (got[t], want[t]) for t in want if got.get(t) != want[t]}


def test_no_archived_file_holds_the_credentials_path(runs):
    _, bq = runs
    files = [p for p in Path(bq.run_dir).rglob("*") if p.is_file()]
    assert len(files) > 10
    for p in files:
        data = p.read_bytes()
        assert SECRET.encode() not in data and b"S3CR3T" not in data, p


def test_the_manifest_lists_each_steps_jobs_and_bytes(runs, bq_server):
    _, bq = runs
    m = json.loads((bq.run_dir / "manifest.json").read_text())
    steps = {s["name"]: s for s in m["stages"]}
    for name in ("validate_before", "load", "derive", "predict", "grade"):
        info = steps[name].get("bigquery") or {}
        assert info.get("jobs", 0) > 0 and len(info["job_ids"]) == info["jobs"], (name, info)
        assert info["bytes_billed"] >= info["bytes_processed"] > 0, (name, info)
    labelled = {j["jobReference"]["jobId"]: j["configuration"]["labels"] for j in bq_server.jobs()}
    for job_id in steps["derive"]["bigquery"]["job_ids"]:
        assert labelled[job_id]["run_id"] == bq.run_id.lower() and labelled[job_id]["stage"] == "derive"


def test_every_job_is_labelled(runs, bq_server):
    jobs = bq_server.jobs()
    assert len(jobs) > 100 and {j["configuration"]["jobType"] for j in jobs} == {"QUERY", "LOAD"}
    stages = set()
    for j in jobs:
        labels = j["configuration"].get("labels") or {}
        assert labels.get("app") == "backfill-runbook" and labels.get("run_id") and labels.get("step"), j["configuration"]
        assert labels.get("stage") in KNOWN_STAGES, labels
        stages.add(labels["stage"])
    assert {"validate", "load", "derive", "predict", "grade"} <= stages
