"""A check that validate_after finds fails the run: the issue-13 scenario, end to end.

A game id listed in two seasons' schedule files was stored twice and grading duplicated its
rows. The load now refuses such a schedule (``test_load_bad_files``), but a warehouse can
still hold the duplicates an older load left: here ``prediction_accuracy`` holds every row
of one graded game twice, on a date the run does not touch. The run must end *failed* at
validate_after, naming the table, the keys and the count, and the manifest, ``runbook status
--json``, ``summary.md`` and ``report.html`` must all list the findings as open.
"""
from __future__ import annotations

import json
import re
import shlex

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from nbcore.cli import main
from nbcore.runbook import run_runbook
from nbcore.validate import FindingsFailed, run_validate
from nbcore.warehouse import open_warehouse

from conftest import copy_full_run


def _duplicate_one_graded_game(params) -> tuple[str, int]:
    """Store every prediction_accuracy row of the earliest graded game twice; (game id, rows)."""
    with open_warehouse(params) as wh:
        game = wh.query("SELECT game_id, COUNT(*) AS n FROM nba_predictions.prediction_accuracy "
                        "GROUP BY game_id, game_date ORDER BY game_date, game_id LIMIT 1")
        game_id, n = str(game.game_id[0]), int(game.n[0])
        wh.execute("INSERT INTO nba_predictions.prediction_accuracy "
                   "SELECT * FROM nba_predictions.prediction_accuracy WHERE game_id = @g", {"g": game_id})
    return game_id, n


@pytest.fixture
def duplicated(demo_copy):
    params, _ = demo_copy
    game_id, n = _duplicate_one_graded_game(params)
    return params, game_id, n


def test_validate_fails_on_findings_only_when_asked(duplicated, tmp_path):
    params, game_id, n = duplicated
    looked = run_validate(params, progress=False)  # status and validate_before: a finding is reported, not raised
    errors = looked.open_errors()
    dup = errors[(errors.check == "duplicate keys") & (errors.table == "prediction_accuracy")]
    assert len(dup) == 1 and f"{n} key(s) occur more than once" in dup["where"].iloc[0] and game_id in dup["where"].iloc[0]

    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    (archive_dir / "params.yaml").write_text("{}")
    from nbcore.archive import RunArchive

    with pytest.raises(FindingsFailed) as e:
        run_validate(params, progress=False, snapshot="after", archive=RunArchive.open(archive_dir), fail_on_findings=True)
    reason = str(e.value)
    assert "duplicate keys in prediction_accuracy" in reason and game_id in reason
    assert f"runbook status --params {archive_dir / 'params.yaml'}" in reason
    record = json.loads((archive_dir / "stages" / "validate_after.json").read_text())
    assert record["status"] == "failed" and record["reason"] == reason
    assert json.loads((archive_dir / "validate_after.json").read_text())["open_errors"], "the snapshot is still saved"


@pytest.mark.slow
def test_duplicate_rows_found_after_the_run_fail_it_and_every_view_lists_them(full_run, tmp_path):
    # a backfilled warehouse (a copy of conftest.full_run): the writing stages find nothing to do, and the
    # duplicates sit on a date no stage touches
    params, params_file = copy_full_run(full_run, tmp_path / "dup", chunk_days=30, notify_webhook=None)
    game_id, n = _duplicate_one_graded_game(params)
    said: list[str] = []
    outcome = run_runbook(params, echo=said.append)

    # the run ends failed at validate_after, and says what, where and how to look
    assert (outcome.status, outcome.exit_code, outcome.stopped_at) == ("failed", 1, "validate_after")
    assert "duplicate keys in prediction_accuracy" in outcome.reason and f"{n} key(s)" in outcome.reason
    assert "runbook status --params" in outcome.reason and outcome.resume_command.startswith("runbook resume")
    assert "duplicate keys in prediction_accuracy" in "\n".join(said)

    # the manifest: every earlier step succeeded; validate_after's record holds the findings
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    steps = {s["name"]: s for s in manifest["stages"]}
    assert all(steps[s]["status"] == "succeeded" for s in ("load", "gate", "derive", "predict", "grade"))
    record = steps["validate_after"]["record"]
    assert record["status"] == "failed"
    assert [(e["check"], e["table"]) for e in record["open_errors"]] == [("duplicate keys", "prediction_accuracy")]
    assert manifest["status"] == "failed" and manifest["exit_code"] == 1

    # the way to look it printed works as printed
    look = re.search(r"`(runbook status --params [^`]+ --checks)`", outcome.reason).group(1)
    res = CliRunner().invoke(main, shlex.split(look)[1:])
    assert res.exit_code == 0 and "duplicate keys" in res.output, res.output

    # runbook status --json: the same findings, open
    res = CliRunner().invoke(main, ["status", "--params", str(params_file), "--json"])
    assert res.exit_code == 0, res.output
    status = json.loads(res.output)
    assert any(e["check"] == "duplicate keys" and e["table"] == "prediction_accuracy" and game_id in e["where"]
               for e in status["open_errors"])

    # the report (it still runs after a failed after-check) and summary.md list them as open
    summary = (outcome.run_dir / "summary.md").read_text()
    assert "## Checks still failing" in summary and "prediction_accuracy" in summary
    assert outcome.report_path is not None and steps["report"]["status"] == "succeeded"
    page = BeautifulSoup(outcome.report_path.read_text(), "html.parser").get_text(" ")
    assert "Checks still failing after the run" in page and "duplicate keys" in page
    assert "Run failed at validate_after" in page
