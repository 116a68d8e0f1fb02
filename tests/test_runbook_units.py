"""The runbook driver's bookkeeping without a kernel (unit tests, milliseconds): which steps a run
has, ``--from`` names, the resume command, the params hash, record set-aside, the sums the manifest
carries and the timings read from an executed notebook. The same mechanics through real papermill
kernels (stand-in notebooks) are in test_runbook_driver.py, test_archive_secrets.py and
test_archive_full_disk.py (``slow``)."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from nbcore import runbook
from nbcore.archive import RunArchive
from nbcore.errors import UsageError
from nbcore.params import build_params
from nbcore.stages import STEPS


def _params(tmp_path: Path, stages, **extra):
    data = {"run_name": "mech", "duckdb_path": str(tmp_path / "wh.duckdb"), "bucket": str(tmp_path),
            "archive_dir": str(tmp_path / "runs"), "stages": stages}
    data.update(extra)
    return build_params(data, "test", tmp_path)


def test_selected_steps_keep_the_registry_order_and_validate_runs_twice(tmp_path):
    steps = runbook.selected_steps(_params(tmp_path, ["report", "load", "validate"]))
    assert [s.name for s in steps] == ["validate_before", "load", "validate_after", "report"]
    assert [s.name for s in runbook.selected_steps(_params(tmp_path, ["gate"]))] == ["gate"]


def test_resolve_step_by_step_name_or_stage_and_a_clear_usage_error():
    assert runbook.resolve_step("validate_after").name == "validate_after"
    assert runbook.resolve_step("validate").name == "validate_before"  # a stage: its first step
    assert runbook.resolve_step("derive").notebook == "03_derive.ipynb"
    steps = [s for s in STEPS if s.stage in ("load", "gate")]
    assert runbook.resolve_step("gate", steps).name == "gate"
    with pytest.raises(UsageError) as e:
        runbook.resolve_step("derive", steps)  # not a step of this run
    assert "load, gate" in str(e.value) and "'derive'" in str(e.value)
    with pytest.raises(UsageError):
        runbook.resolve_step("nonsense")


def test_resume_command_is_quoted_and_runs_as_printed(tmp_path):
    run_dir = tmp_path / "arch ive" / "run-1"
    cmd = runbook.resume_command(run_dir)
    assert shlex.split(cmd) == ["runbook", "resume", "run-1", "--archive-dir", str(run_dir.parent)]
    assert shlex.split(runbook.resume_command(run_dir, "gate"))[-2:] == ["--from", "gate"]


def test_params_hash_is_canonical_and_changes_with_any_value():
    a = {"run_name": "x", "seasons": [2023], "chunk_days": 30}
    assert runbook.params_hash(a) == runbook.params_hash(dict(reversed(list(a.items()))))  # key order does not count
    assert runbook.params_hash(a) != runbook.params_hash({**a, "chunk_days": 31})
    assert len(runbook.params_hash(a)) == 16


def test_an_earlier_attempts_record_is_set_aside_numbered(tmp_path):
    archive = RunArchive.create(_params(tmp_path, ["gate"]), "r1")
    step = runbook.resolve_step("gate")
    runbook._set_aside_record(archive, step)  # nothing to set aside: no error, nothing made
    assert not (archive.path / "stages" / "attempts").exists()
    for n in (1, 2):
        path = runbook.record_path(archive, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"stage": "gate", "status": "blocked", "reason": f"attempt {n}"}))
        runbook._set_aside_record(archive, step)
        assert not path.exists()
    attempts = sorted(p.name for p in (archive.path / "stages" / "attempts").iterdir())
    assert attempts == ["gate-1.json", "gate-2.json"]
    assert json.loads((archive.path / "stages" / "attempts" / "gate-2.json").read_text())["reason"] == "attempt 2"
    assert runbook._stage_record(archive, step) is None  # the step's own record is read, not an attempt's


def test_a_record_that_is_not_json_is_a_failed_record(tmp_path):
    archive = RunArchive.create(_params(tmp_path, ["load"]), "r2")
    step = runbook.resolve_step("load")
    path = runbook.record_path(archive, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    rec = runbook._stage_record(archive, step)
    assert rec.status == "failed" and "not valid JSON" in rec.reason


def test_rows_written_and_bytes_billed_add_up_over_the_steps():
    entries = [{"record": {"rows_written": {"a": 5, "b": 1}}}, {"record": None},
               {"record": {"rows_written": {"a": 2.0, "c": "n/a"}}},
               {"bigquery": {"jobs": 2, "job_ids": ["j1", "j2"], "bytes_billed": 10}},
               {"bigquery": {"jobs": 0, "bytes_billed": None}}, {"bigquery": "unlisted"}]
    assert runbook._rows_written(entries) == {"a": 7, "b": 1}
    assert runbook._bytes_billed(entries) == 10
    assert entries[3]["job_ids"] == ["j1", "j2"] and entries[4]["job_ids"] == []
    assert runbook._bytes_billed([{"record": {}}]) is None  # DuckDB: nothing billed, not 0


def test_cell_seconds_read_papermills_durations(tmp_path):
    nb = tmp_path / "x.ipynb"
    nb.write_text(json.dumps({"metadata": {"papermill": {"duration": 4.5}},
                              "cells": [{"metadata": {"papermill": {"duration": 1.25}}},
                                        {"metadata": {"papermill": {"duration": None}}}, {"metadata": {}}]}))
    assert runbook._cell_seconds(nb) == (4.5, 1.25)
    assert runbook._cell_seconds(tmp_path / "missing.ipynb") == (None, None)
    (tmp_path / "bad.ipynb").write_text("{")
    assert runbook._cell_seconds(tmp_path / "bad.ipynb") == (None, None)


def test_a_new_entry_starts_pending_with_its_output_names(tmp_path):
    step = runbook.resolve_step("validate_after")
    entry = runbook._new_entry(step, tmp_path)
    assert (entry["name"], entry["stage"], entry["status"]) == ("validate_after", "validate", "pending")
    assert (entry["notebook"], entry["html"]) == ("06_validate_after.ipynb", "06_validate_after.html")
    assert entry["source"] == str(tmp_path / "00_validate.ipynb")  # outside the project: the full path


def test_describe_shows_the_resume_command_and_escapes_control_characters(tmp_path):
    out = runbook.RunOutcome(run_id="r\x1b[31m", run_dir=tmp_path / "r", status="failed", exit_code=1,
                             report_path=None, stopped_at="gate", reason="raw incomplete",
                             resume_command="runbook resume r --archive-dir /a")
    text = out.describe()
    assert "\x1b" not in text and "stopped at gate: raw incomplete" in text
    assert "resume with: runbook resume r --archive-dir /a" in text and "report:" not in text


@pytest.mark.parametrize("name, code", [("UsageError", 2), ("WarehouseLockedError", 4), ("StageFailed", 1),
                                        ("GateBlocked", 3), ("FindingsFailed", 1), ("ValueError", 1), ("Nope", 1)])
def test_an_error_known_by_its_class_name_keeps_its_exit_code(name, code):
    """What the driver does with the class name papermill reports from a kernel (the notebook boundary;
    through real kernels: test_plan_is_program.test_an_error_raised_inside_a_stage_exits_with_its_code)."""
    from nbcore.errors import exit_code_for_name

    assert exit_code_for_name(name) == code


def test_a_signal_names_its_exit_code():
    from nbcore.errors import exit_code_for_signal

    assert [exit_code_for_signal(s) for s in ("SIGHUP", "SIGINT", "SIGTERM", "SIGUSR1")] == [129, 130, 143, 130]
