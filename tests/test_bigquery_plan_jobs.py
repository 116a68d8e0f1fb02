"""``runbook plan`` on BigQuery shows the jobs each stage will send next to its bytes. The
estimate (``nbcore.jobs_estimate``: the plan's dates cut into the stages' chunks and batches)
is compared with the jobs the loopback server counts when the writing stages then run on the
small demo: each stage within 25 % (at least 3 jobs) of its count, the total within 15 %."""
from __future__ import annotations

from collections import Counter

import pytest

from bqserver import BigQueryLoopback
from conftest import small_params
from nbcore.bench.bigquery import _stages
from nbcore.demo.build import build_demo
from nbcore.plan import plan_run

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        root = tmp_path_factory.mktemp("bq_plan_jobs")
        params = small_params(root, backend="bigquery", chunk_days=30, bigquery={
            "project": "demo-project", "dataset_suffix": "_plan", "api_endpoint": srv.endpoint})
        build_demo(params, progress=False)
        yield srv, params


def test_the_plans_jobs_per_stage_match_what_the_stages_send(demo):
    srv, params = demo
    plan = plan_run(params)
    assert set(plan.jobs) == {"load", "gate", "derive", "predict", "grade"}
    assert plan.to_json()["jobs_by_stage"] == plan.jobs and "per chunk" in plan.to_json()["jobs_rule"]
    assert "jobs" in plan.by_stage().columns

    since = len(srv.jobs())
    _stages(params)
    sent = Counter((j["configuration"].get("labels") or {}).get("stage") for j in srv.jobs()[since:])
    for stage, estimate in plan.jobs.items():
        assert abs(estimate - sent[stage]) <= max(3, 0.25 * sent[stage]), (stage, estimate, sent[stage])
    total = sum(sent[s] for s in plan.jobs)
    assert abs(sum(plan.jobs.values()) - total) <= 0.15 * total, (plan.jobs, dict(sent))
