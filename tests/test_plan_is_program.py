"""The plan is the program (issue 20): stages execute the chunks of ``plan.json``, never targets of
their own; a run killed mid-derive resumes exactly the chunks not yet succeeded (checked on the killed
run of test_runbook_full); a waived date is reported as waived, never closed; an error raised inside a
stage notebook keeps its exit code."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nbcore import program, report, targets
from nbcore.archive import RunArchive
from nbcore.derive import run_derive
from nbcore.grade import run_grade
from nbcore.plan import plan_run
from nbcore.predict import run_predict
from nbcore.runbook import resume_run, run_runbook
from nbcore.sources import file_path
from nbcore.warehouse import open_warehouse
from nbcore.why import why

from conftest import copy_full_run
from runbook_helpers import write_stage_notebook
from test_runbook_driver import _params

BOX = "bdl_player_boxscores"


# -- a stage never computes targets of its own --------------------------------------------------
@pytest.mark.slow  # derives, predicts and grades the small demo
def test_stages_execute_the_saved_plan_and_choose_no_targets(loaded, tmp_path, monkeypatch):
    """With ``plan.json`` in the archive, derive, predict and grade run its chunks even when every
    function that chooses targets raises: they execute the plan, they do not plan."""
    params, _ = loaded
    params = params.model_copy(update={"chunk_days": 10})
    plan = plan_run(params)
    archive = RunArchive.create(params, "planned")
    archive.write_json("plan.json", {"plan_id": "p1", "made_at": "2026-01-01T00:00:00+00:00", **plan.to_json()})

    def chooses(*_a, **_k):
        raise AssertionError("a stage chose targets of its own")

    monkeypatch.setattr(targets, "planned_targets", chooses)
    monkeypatch.setattr(program, "one_stage", chooses)
    ran = {}
    for stage, fn in (("derive", run_derive), ("predict", run_predict), ("grade", run_grade)):
        result = fn(params, archive=archive, progress=False)
        assert result.ok if hasattr(result, "ok") else result.status == "succeeded", result
        ran[stage] = [[d.isoformat() for d in c.dates] for c in result.chunks]
        assert ran[stage] == plan.program[stage]["chunks"], stage  # every planned chunk, in order, and no other
    assert ran["derive"] and ran["predict"] and ran["grade"]
    done = program.outcomes(archive.path)
    assert {o["status"] for o in done} == {"succeeded"}
    assert len(done) == sum(len(c) for c in ran.values())


# -- killed in the middle of derive, resumed: test_runbook_full.test_kill_mid_derive_then_resume_equals_uninterrupted
# (one killed run checks both that the resume equals an uninterrupted run and that it executes
# exactly the plan's chunks not yet done, none twice)


# -- a waived date is waived, never closed ----------------------------------------------------------
@pytest.mark.slow
def test_a_date_waived_during_the_run_is_reported_waived_not_closed(small_demo, full_run, tmp_path):
    """The issue's scenario: a backfilled warehouse loses one date of box scores and its file; the
    run blocks at the gate; a waiver is added and the run resumed. The report says 0 closed and
    1 waived, and ``why`` gives no fill command."""
    src, _ = small_demo
    # a backfilled warehouse: a copy of the shared uninterrupted run (conftest.full_run)
    params, params_file = copy_full_run(full_run, tmp_path / "demo", chunk_days=30, notify_webhook=None)
    assert full_run[2].exit_code == 0, full_run[2].describe()
    with open_warehouse(params) as wh:
        day = pd.Timestamp(wh.query(f"SELECT MAX(game_date) AS d FROM nba_raw.{BOX}").d.iloc[0]).date()
        wh.execute(f"DELETE FROM nba_raw.{BOX} WHERE game_date = @d", {"d": day})
    (Path(params.bucket) / file_path(BOX, day)).unlink()

    blocked = run_runbook(params, echo=None)
    assert (blocked.status, blocked.exit_code) == ("blocked", 3), blocked.describe()
    waivers = tmp_path / "waivers.yaml"
    known = yaml.safe_load(Path(src.waivers).read_text())["waivers"]
    waivers.write_text(yaml.safe_dump({"waivers": known + [{
        "source": BOX, "dates": [day.isoformat()], "reason": "The feed lost this date for good.",
        "approved_by": "jane.doe"}]}))
    done = resume_run(blocked.run_id, archive_dir=params.archive_dir, echo=None, changes={"waivers": str(waivers)})
    assert (done.status, done.exit_code) == ("succeeded", 0), done.describe()

    run = report.load_run(done.run_dir)
    k = report.key_figures(run)
    assert (k["closed"], k["waived_in_run"]) == (0, 1)
    head = report.headline(run)
    assert "0 closed, 1 waived" in head and not head.startswith("All"), head
    assert report.dates_closed(run).empty and report.dates_open(run).empty
    assert day.isoformat() in report.dates_waived(run).ranges.str.cat()
    w = why(params.model_copy(update={"waivers": waivers}), BOX, day)
    assert (w.status, w.command) == ("waived", None) and "fill it with" not in w.explain()


# -- errors keep their exit code through the notebook boundary ---------------------------------------
@pytest.mark.slow  # papermill kernels (stand-in notebooks)
@pytest.mark.parametrize("error, code", [("UsageError", 2), ("WarehouseLockedError", 4), ("StageFailed", 1)])
def test_an_error_raised_inside_a_stage_exits_with_its_code(tmp_path, error, code):
    nbdir = tmp_path / "notebooks"
    write_stage_notebook(nbdir / "01_load.ipynb", f"from nbcore.errors import {error}\nraise {error}('inside the stage')")
    out = run_runbook(_params(tmp_path, ["load"]), notebooks_dir=nbdir, echo=None)
    assert (out.status, out.exit_code) == ("failed", code)
    m = json.loads((out.run_dir / "manifest.json").read_text())
    assert m["exit_code"] == code and m["stages"][0]["error_class"] == error
