"""``runbook plan`` (writes nothing, predicts the writes) and ``runbook why`` (explains a gap),
on the small demo's before state."""
from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcore.cli import main
from nbcore.demo.build import load_holes
from nbcore.history import RunRecord, record_runs
from nbcore.plan import plan_run
from nbcore.warehouse import open_warehouse
from nbcore.why import why

from runbook_helpers import copy_demo


@pytest.fixture
def demo(small_demo, tmp_path):
    params, params_file = copy_demo(small_demo[0], tmp_path)
    return params, params_file, load_holes(params.bucket)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plan_lists_the_holes_and_writes_nothing(demo):
    params, params_file, holes = demo
    before = _sha(params.duckdb_path)
    plan = plan_run(params)
    assert _sha(params.duckdb_path) == before
    assert not params.archive_dir.exists()
    f = plan.frame
    for table in ("bdl_player_boxscores", "nbac_gamebook_player_stats", "odds_api_player_points_props"):
        row = f[f.table == table].iloc[0]
        assert row.stage == "load"
        assert row.dates == len(holes.missing_dates(table))
        assert row.first == min(holes.missing_dates(table)) and row.last == max(holes.missing_dates(table))
        assert row.files_in_bucket == row.dates and row.expected_rows > 10 * row.games
    pgs = f[f.table == "player_game_summary"].iloc[0]
    assert pgs.stage == "derive" and pgs.missing == len(holes.missing_dates("player_game_summary"))
    # plus the date whose box scores load will complete (derived from the gamebook): stale, with its cause
    assert pgs.dates == pgs.missing + pgs.stale and pgs.stale >= 1
    assert any(c.startswith("stale: bdl_player_boxscores is loaded by this run")
               for c in plan.targets["nba_analytics.player_game_summary"].values())
    assert set(f.stage) <= {"load", "derive", "predict", "grade"}
    assert plan.gate["verdict"].startswith("would pass")
    r = CliRunner().invoke(main, ["plan", "--params", str(params_file), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert {t["table"] for t in data["tables"]} >= {"bdl_player_boxscores", "player_game_summary"}
    assert _sha(params.duckdb_path) == before


def test_plan_gate_would_block_when_a_file_is_gone(demo):
    params, _, holes = demo
    day = holes.raw_missing["nbac_gamebook_player_stats"][0]
    Path(params.bucket, "nbac_gamebook_player_stats", f"{day}.json").unlink()
    plan = plan_run(params)
    row = plan.frame[plan.frame.table == "nbac_gamebook_player_stats"].iloc[0]
    assert row.files_in_bucket == row.dates - 1
    assert plan.gate["verdict"].startswith("would block")


def test_why_raw_hole(demo):
    params, params_file, holes = demo
    day = holes.raw_missing["bdl_player_boxscores"][-1]
    r = why(params, "bdl_player_boxscores", day, params_file=str(params_file))
    assert r.status == "missing" and r.rows == 0 and r.scheduled_games
    assert r.upstream.empty and r.waived is None
    assert f"--start-date {day} --end-date {day}" in r.command
    assert "--stages validate,load,gate,report" in r.command and "--tables bdl_player_boxscores" in r.command


def test_why_partial_date_names_the_game(demo):
    params, _, holes = demo
    (day, games), = holes.partial["bdl_player_boxscores"].items()
    r = why(params, "bdl_player_boxscores", day)
    assert r.status == "missing" and r.missing_games == games  # fewer games than expected is missing
    assert games[0] in r.explain() and f"{len(r.scheduled_games) - len(games)}/{len(r.scheduled_games)} games" in r.cause


def test_why_downstream_shows_upstream_and_history_errors(demo):
    params, params_file, holes = demo
    day = holes.raw_missing["bdl_player_boxscores"][-1]
    with open_warehouse(params) as wh:
        record_runs(wh, [RunRecord(run_id="run-x", stage="derive", phase="3", processor="player_game_summary",
                                   data_date=day, success=False, error="upstream bdl_player_boxscores missing 5 games")])
    r = why(params, "player_game_summary", day, params_file=str(params_file))
    assert r.status == "failed"  # its latest attempt failed (nbcore.state): failed until an attempt succeeds
    assert "latest attempt failed" in r.cause
    up = r.upstream.set_index("table")
    assert up.loc["bdl_player_boxscores", "status"] == "missing"
    assert "bdl_player_boxscores" in r.missing_upstream
    assert not r.history.empty and r.history.error.iloc[0] == "upstream bdl_player_boxscores missing 5 games"
    assert "load" in r.command and "derive" in r.command and "player_game_summary" in r.command
    text = r.explain()
    assert "FAILED: upstream bdl_player_boxscores missing 5 games" in text and "fill it with" in text
    assert "<table" in r._repr_html_()
    res = CliRunner().invoke(main, ["why", "player_game_summary", day.isoformat(), "--params", str(params_file), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["state"] == "failed"


def test_why_playoff_hole_has_raw_but_no_analytics(demo):
    params, _, holes = demo
    raw_holes = {d for v in holes.raw_missing.values() for d in v} | set(holes.partial["bdl_player_boxscores"])
    day = next(d for d in holes.downstream_missing if d not in raw_holes)
    r = why(params, "player_game_summary", day)
    assert r.status == "missing"
    up = r.upstream.set_index("table")
    assert (up.loc[["bdl_player_boxscores", "nbac_gamebook_player_stats"], "status"] == "present").all()
    assert "load" not in r.command.split("--stages ")[1].split()[0] and "derive" in r.command


def test_why_waived_and_no_games(demo, tmp_path):
    params, _, holes = demo
    day = holes.raw_missing["odds_api_player_points_props"][-1]
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(f"waivers:\n  - source: odds_api_player_points_props\n    dates: [{day}]\n"
                       "    reason: The odds feed had an outage that whole day.\n    approved_by: jane.doe\n")
    waived_params = params.model_copy(update={"waivers": waivers})
    r = why(waived_params, "upcoming_player_game_context", day)
    assert r.waived and "outage" in r.waived and "jane.doe" in r.waived
    assert why(params, "upcoming_player_game_context", day).waived is None
    r = why(params, "player_game_summary", date(2024, 7, 15))  # off season
    assert r.status == "no games scheduled" and r.command is None
