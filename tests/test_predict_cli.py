"""``runbook predict`` / ``runbook grade``: exit codes, archive records, parameter errors."""
from __future__ import annotations

import json
from datetime import date

import yaml
from click.testing import CliRunner

from nbcore.archive import RunArchive
from nbcore.cli import main
from nbcore.predict import stage as predict_stage
from predict_fixtures import box, feature, game, open_fresh, put, tiny_params

D1 = date(2024, 1, 10)


def _setup(tmp_path):
    params = tiny_params(tmp_path)
    wh = open_fresh(params)
    put(wh, "nbac_schedule", [game("G1", D1)])
    put(wh, "ml_feature_store_v2", [feature("G1", D1, "a", 20.0, 18.5), feature("G1", D1, "b", 10.0, 12.5)])
    put(wh, "player_game_summary", [box("G1", D1, "a", 22)])
    wh.close()
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"run_name": "t", "duckdb_path": str(params.duckdb_path), "bucket": str(tmp_path),
                                    "archive_dir": str(tmp_path / "runs"), "seasons": [2023]}))
    return params, str(path)


def test_predict_then_grade_from_the_cli(tmp_path):
    params, path = _setup(tmp_path)
    run_dir = RunArchive.create(params, "cli-run").path
    runner = CliRunner()
    r = runner.invoke(main, ["predict", "--params", path, "--no-progress", "--run-dir", str(run_dir)])
    assert r.exit_code == 0, r.output
    assert "predicted 2 player-games on 1 date " in r.output
    record = json.loads((run_dir / "stages" / "predict.json").read_text())
    assert record["status"] == "succeeded" and record["rows_written"] == {predict_stage.TABLE: 8}
    r = runner.invoke(main, ["grade", "--params", path, "--no-progress", "--json", "--run-dir", str(run_dir)])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert (s["graded"], s["voided"]) == (4, 4)  # b has no box-score row in a final game: voided
    assert s["metrics_by_system"]["moving_average"]["mae"] == 2.0
    assert json.loads((run_dir / "stages" / "grade.json").read_text())["status"] == "succeeded"
    r = runner.invoke(main, ["predict", "--params", path, "--no-progress"])
    assert r.exit_code == 0 and "on 0 dates" in r.output


def test_a_failing_chunk_exits_1_and_bad_input_exits_2(tmp_path, monkeypatch):
    params, path = _setup(tmp_path)
    runner = CliRunner()

    def boom(*a, **k):
        raise RuntimeError("feature store unreadable")

    monkeypatch.setattr(predict_stage, "predict_frame", boom)
    r = runner.invoke(main, ["predict", "--params", path, "--no-progress"])
    assert r.exit_code == 1 and "2024-01-10" in r.output and "feature store unreadable" in r.output
    r = runner.invoke(main, ["predict", "--params", path, "--dates", "2024-02-30"])
    assert r.exit_code == 2
    r = runner.invoke(main, ["grade", "--params", path, "--chunk-days", "0"])
    assert r.exit_code == 2 and "chunk_days" in r.output


def test_tables_parameter_can_leave_the_stages_out(tmp_path):
    from nbcore import grade
    from nbcore.predict import run_predict

    params, _ = _setup(tmp_path)
    only_derive = params.model_copy(update={"tables": ["player_game_summary"]})
    assert run_predict(only_derive, progress=False).summary()["status"] == "skipped"
    assert grade.run_grade(only_derive, progress=False).summary()["status"] == "skipped"
    assert run_predict(params, progress=False).summary()["dates"] == 1
