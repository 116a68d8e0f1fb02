"""The notebooks are the source: committed clean, with a parameters cell that declares the run
parameters, so ``papermill -p``, ``-f params/*.yaml`` and ``--help-notebook`` all work; and a
stage that fails fails its notebook (papermill's banner, non-zero exit, nbval)."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import nbformat
import papermill as pm
from papermill.iorw import read_yaml_file
import pytest
import yaml

from nbcore import notebook
from nbcore.params import PROJECT_ROOT, RunParams
from nbcore.stages import STAGES

from runbook_helpers import copy_demo

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
RUN_PARAMS_FILES = [PROJECT_ROOT / "params" / n for n in ("demo.yaml", "nbval.yaml", "bigquery.example.yaml")]
NOT_RUN_PARAMS = {"params_file", "run_dir", "snapshot", "fail_on_findings"}  # the notebook's own, not RunParams fields
BIN = Path(sys.executable).parent
FIRST_HOLE = "2024-03-31"  # the small demo's first raw hole: derive's defensive check refuses it


def _env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **extra}


def _parameters_cell(nb) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    return cells[0]


def test_every_stage_has_its_notebook_and_nothing_else_is_there():
    assert sorted(s.notebook for s in STAGES) == [p.name for p in NOTEBOOKS]
    assert not list((PROJECT_ROOT / "tools").glob("make_*_notebook.py")), "notebooks are their own source"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    _parameters_cell(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "papermill" not in nb.metadata, f"{path.name} is an executed copy, not the source"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_declares_run_params_defaulting_to_the_file(path):
    declared = pm.inspect_notebook(str(path))
    assert {"params_file", "run_dir", "start_date", "end_date", "seasons", "tables", "chunk_days",
            "backfill_mode", "strict_mode"} <= set(declared)
    assert set(declared) - NOT_RUN_PARAMS <= set(RunParams.model_fields), "only RunParams fields (or the notebook's own)"
    for name, p in declared.items():
        if name not in ("snapshot", "fail_on_findings"):
            assert p["default"] == "None", f"{path.name}: {name} defaults to {p['default']}, not None (= from the file)"
        assert p["help"], f"{path.name}: {name} has no help comment"


@pytest.mark.parametrize("params_file", RUN_PARAMS_FILES, ids=lambda p: p.name)
def test_a_params_file_injects_no_unknown_parameter(params_file, tmp_path, caplog):
    values = read_yaml_file(str(params_file))  # as `papermill -f` reads it (dates stay strings)
    with caplog.at_level(logging.WARNING, logger="papermill"):
        for path in NOTEBOOKS:
            pm.execute_notebook(str(path), str(tmp_path / path.name), parameters=values, prepare_only=True,
                                progress_bar=False)
    assert not [r.getMessage() for r in caplog.records if "unknown parameter" in r.getMessage()]


@pytest.mark.slow  # a papermill subprocess
def test_papermill_cli_with_the_demo_params_file_does_not_warn(tmp_path):
    out = subprocess.run([str(BIN / "papermill"), "--prepare-only", "notebooks/03_derive.ipynb", str(tmp_path / "o.ipynb"),
                          "-f", "params/demo.yaml", "-p", "start_date", "2023-04-15"],
                         cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "unknown parameter" not in out.stderr and "Passed unknown" not in out.stderr


@pytest.mark.slow  # a papermill subprocess
def test_help_notebook_lists_the_run_parameters():
    out = subprocess.run([str(BIN / "papermill"), "--help-notebook", "notebooks/05_grade.ipynb"],
                         cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in ("params_file", "start_date", "chunk_days", "regrade", "edge_threshold"):
        assert f"  {name}: " in out.stdout
    assert "first game date, YYYY-MM-DD" in out.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_p_values_override_the_params_file_and_none_keeps_it(path, tmp_path):
    """What the kernel resolves after papermill injects ``-p`` values (parameters cells run, nothing else)."""
    given = {"params_file": "params/demo.yaml", "start_date": "2023-04-15", "end_date": "2023-04-20",
             "seasons": 2022, "tables": "player_game_summary,team_offense_game_summary", "chunk_days": 7,
             "backfill_mode": True}
    prepared = pm.execute_notebook(str(path), str(tmp_path / path.name), parameters=given, prepare_only=True,
                                   progress_bar=False)
    namespace: dict = {}
    for cell in prepared.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            exec(cell.source, namespace)
    params, archive = notebook.setup(namespace["params_file"], namespace["run_dir"], namespace)
    assert archive is None
    assert (params.start_date, params.end_date) == (date(2023, 4, 15), date(2023, 4, 20))
    assert params.seasons == [2022] and params.chunk_days == 7 and params.backfill_mode is True
    assert params.tables == ["player_game_summary", "team_offense_game_summary"]
    from_file = yaml.safe_load((PROJECT_ROOT / "params/demo.yaml").read_text())
    assert params.run_name == from_file["run_name"] and params.strict_mode == from_file["strict_mode"]


def test_overrides_ignore_none_and_names_that_are_not_run_params():
    ns = {"start_date": None, "run_dir": "/x", "snapshot": "after", "seasons": "2022,2023", "chunk_days": 3}
    assert notebook.overrides_from(ns) == {"seasons": ["2022", "2023"], "chunk_days": 3}
    assert notebook.overrides_from({"seasons": "[2023, 2024]", "tables": "player_game_summary"}) == {
        "seasons": [2023, 2024], "tables": ["player_game_summary"]}


# -- a stage that fails fails its notebook -----------------------------------------------------
# the small demo's first date on which a derived table is missing, not blocked (upcoming player
# context: its gamebook is there), while its box scores are not loaded: derive plans it and refuses it
FAILING_DAY = "2024-04-01"
@pytest.fixture
def before_state(small_demo, tmp_path):
    """A private copy of the small demo in its before state: raw holes still open."""
    return copy_demo(small_demo[0], tmp_path / "demo")


@pytest.mark.slow
def test_failing_derive_fails_papermill_with_its_banner(before_state, tmp_path):
    params, params_file = before_state
    run_dir = tmp_path / "archive"
    run_dir.mkdir()
    out_nb = tmp_path / "out.ipynb"
    cmd = [str(BIN / "papermill"), "notebooks/03_derive.ipynb", str(out_nb), "-p", "params_file", str(params_file),
           "-p", "run_dir", str(run_dir), "-p", "start_date", FAILING_DAY, "-p", "end_date", FAILING_DAY,
           "--no-progress-bar"]
    out = subprocess.run(cmd, cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "PapermillExecutionError" in out.stderr and "Exception encountered at" in out.stderr
    assert re.search(rf"\w*(StageFailed|DeriveFailed): .*{FAILING_DAY}", out.stderr)  # the family's error, naming the date
    executed = json.loads(out_nb.read_text())
    assert any("papermill-error-cell" in "".join(c["source"]) for c in executed["cells"] if c["cell_type"] == "markdown")
    # -p start_date/end_date took effect: derive was asked for that one date, not for every hole
    record = json.loads((run_dir / "stages" / "derive.json").read_text())
    assert record["status"] == "failed" and record["failed_date"] == FAILING_DAY
    assert record["dates_requested"] == 1


@pytest.mark.slow
def test_failing_derive_fails_nbval(before_state, tmp_path):
    params, params_file = before_state
    data = yaml.safe_load(params_file.read_text())
    data.update(start_date=FAILING_DAY, end_date=FAILING_DAY)
    failing = tmp_path / "failing.yaml"
    failing.write_text(yaml.safe_dump(data))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                          "notebooks/03_derive.ipynb"], cwd=PROJECT_ROOT, env=_env(RUNBOOK_PARAMS=str(failing)),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout[-3000:]
    assert "failed" in out.stdout.splitlines()[-1] and re.search(r"(StageFailed|DeriveFailed)", out.stdout)
