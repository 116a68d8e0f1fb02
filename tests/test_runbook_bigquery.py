"""The runbook driver on the BigQuery backend (the loopback server): every step's jobs are
labelled with the run and stage, and the manifest lists their ids and bytes; the warehouse
lock is keyed by project + dataset suffix; ``plan``'s dry runs reach BigQuery."""
from __future__ import annotations

import json
from datetime import date

import pytest

from bqserver import BigQueryLoopback
from nbcore.lock import lock_path
from nbcore.params import build_params
from nbcore.plan import _dry_run_bytes
from nbcore.runbook import run_runbook
from nbcore.warehouse import open_warehouse

from runbook_helpers import write_stage_notebook

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

SECRET = "/secrets/bq-sa-S3CR3T-c0ffee.json"


@pytest.fixture(scope="module")
def server():
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        yield srv


def _params(server, tmp_path, **extra):
    return build_params({
        "backend": "bigquery", "bucket": str(tmp_path), "archive_dir": str(tmp_path / "runs"), "stages": ["load"],
        "bigquery": {"project": "demo-project", "dataset_suffix": "_rb", "api_endpoint": server.endpoint,
                     "credentials_path": SECRET}, **extra}, "test", tmp_path)


def test_manifest_lists_each_steps_jobs_and_bytes(server, tmp_path):
    nbdir = tmp_path / "notebooks"
    write_stage_notebook(nbdir / "01_load.ipynb", "\n".join([
        "import os",
        "from nbcore import notebook",
        "from nbcore.lock import lock_path",
        "from nbcore.warehouse import open_warehouse",
        "params, archive = notebook.setup(params_file, run_dir, globals())",
        "assert lock_path(params).exists()  # the run holds the project+suffix lock",
        "with open_warehouse(params) as wh:",
        "    wh.query('SELECT COUNT(*) AS n FROM nba_raw.nbac_schedule')",
        "    wh.query('SELECT COUNT(*) AS n FROM nba_reference.processor_run_history')",
    ]))
    params = _params(server, tmp_path)
    out = run_runbook(params, notebooks_dir=nbdir, echo=None)
    assert out.status == "succeeded", out.describe()
    step = out.manifest["stages"][0]
    jobs = step["bigquery"]
    assert jobs["jobs"] >= 2 and len(jobs["job_ids"]) == jobs["jobs"], jobs
    assert step["job_ids"] == jobs["job_ids"] and out.manifest["bytes_billed"] == jobs["bytes_billed"]
    labelled = [j for j in server.jobs() if j["jobReference"]["jobId"] in set(jobs["job_ids"])]
    assert labelled and all(j["configuration"]["labels"]["run_id"] == out.run_id.lower() and
                            j["configuration"]["labels"]["stage"] == "load" for j in labelled)
    assert lock_path(params).name == "bigquery-demo-project_rb.lock" and not lock_path(params).exists()
    for f in out.run_dir.rglob("*"):
        if f.is_file():
            assert b"S3CR3T" not in f.read_bytes(), f


def test_plan_dry_runs_a_stage_sql_file(server, tmp_path):
    params = _params(server, tmp_path)
    with open_warehouse(params) as wh:
        n = _dry_run_bytes(wh, "derive", "player_game_summary", [date(2024, 4, 1), date(2024, 4, 3)], params)
    assert isinstance(n, int) and n >= 0
    assert json.dumps(n)
