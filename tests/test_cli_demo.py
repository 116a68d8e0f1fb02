"""The demo's starting state is not a person's work (issue 22): building it leaves no run archive, so
after ``runbook demo`` the only run ``runbook runs`` lists is the demo's own, and the demo prints no
``ERROR`` or ``Traceback`` line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nbcore.archive import list_runs
from nbcore.params import PROJECT_ROOT
from nbcore.warehouse import open_warehouse

BIN = Path(sys.executable).parent


def test_the_before_state_leaves_no_archive_and_keeps_its_run_ids(small_demo):
    params, _ = small_demo
    assert list_runs(params.archive_dir, records=True) == []
    assert not Path(params.archive_dir).exists() or not any(Path(params.archive_dir).iterdir())
    with open_warehouse(params, read_only=True) as wh:
        ids = wh.query("SELECT DISTINCT stage, run_id FROM nba_reference.processor_run_history "
                       "WHERE stage IN ('derive', 'predict', 'grade')")
    assert set(ids.stage) == {"derive", "predict", "grade"}
    assert all(r.run_id.endswith(f"-demo-before-state-{r.stage}") for r in ids.itertuples())


@pytest.mark.slow  # builds the demo and runs it through the `runbook` CLI
def test_runbook_demo_lists_exactly_one_run_and_prints_no_error(tmp_path):
    params_file = tmp_path / "demo.yaml"
    params_file.write_text(yaml.safe_dump({
        "run_name": "demo", "duckdb_path": str(tmp_path / "warehouse.duckdb"), "bucket": str(tmp_path / "bucket"),
        "archive_dir": str(tmp_path / "runs"), "seasons": [2023, 2024], "demo": {"scale": "small", "seed": 7},
        "waivers": str(PROJECT_ROOT / "params" / "waivers.example.yaml")}))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    demo = subprocess.run([str(BIN / "runbook"), "demo", "--params", str(params_file)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    out = demo.stdout + demo.stderr
    assert demo.returncode == 0, out
    assert not [line for line in out.splitlines() if "ERROR" in line or "Traceback" in line], out
    runs = subprocess.run([str(BIN / "runbook"), "runs", "--params", str(params_file), "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    listed = json.loads(runs.stdout)
    assert [(r["kind"], r["status"]) for r in listed] == [("run", "succeeded")], listed
    assert listed[0]["report"] and Path(listed[0]["report"]).is_file()
