"""Inputs from the hostile-input round (issue 24) that need a real demo league: each refused with
its documented exit code and a message naming the file or field, no traceback, and nothing left
behind (no archive, no lock file)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runbook_helpers import copy_demo


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbcore.cli", *args], capture_output=True, text=True, timeout=600)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.slow  # CLI subprocesses
def test_a_date_range_without_games_is_refused_before_validate(small_demo, tmp_path):
    params, params_file = copy_demo(small_demo[0], tmp_path, start_date="2019-01-01", end_date="2019-02-01")
    before = _tree(tmp_path)
    for command in ("run", "load"):
        r = _cli(command, "--params", str(params_file))
        assert r.returncode == 2, (command, r.stderr)
        assert "start_date/end_date: no game of the schedule is between 2019-01-01 and 2019-02-01" in r.stderr
        assert "Traceback" not in r.stderr
    assert _tree(tmp_path) == before  # no archive, no lock file
    # one game in range is enough: the same parameters with a range inside a season pass the check
    from nbcore.expected import schedule_file_games
    from nbcore.preflight import date_range_problems

    first_day = schedule_file_games(params, params.season_list[-1])[0].game_date.min()
    assert date_range_problems(params.model_copy(update={"start_date": first_day, "end_date": first_day})) == []


WAIVER = {"reason": "The feed was down for the whole season.", "approved_by": "jane.doe (data platform)"}


def _with_waivers(params_file: Path, waivers: list[dict]) -> Path:
    """The params file, now pointing at a waiver file of its own holding ``waivers``."""
    folder = params_file.parent
    (folder / "waivers.yaml").write_text(yaml.safe_dump({"waivers": waivers}, sort_keys=False))
    data = yaml.safe_load(params_file.read_text())
    data["waivers"] = str(folder / "waivers.yaml")
    params_file.write_text(yaml.safe_dump(data, sort_keys=False))
    return params_file


@pytest.mark.slow  # CLI subprocesses
def test_a_waiver_for_a_game_in_no_schedule_warns(small_demo, tmp_path):
    params, params_file = copy_demo(small_demo[0], tmp_path)
    _with_waivers(params_file, [{"source": "bdl_player_boxscores", "games": ["0029999999"], **WAIVER}])
    r = _cli("status", "--params", str(params_file))
    assert r.returncode == 0, r.stderr
    assert "warning: waivers: bdl_player_boxscores waiver for game(s) 0029999999" in r.stderr
    assert "waives nothing" in r.stderr and "Traceback" not in r.stderr


def test_a_whole_season_waiver_does_not_stop_deriving_dates_whose_raw_data_is_there(loaded, tmp_path):
    from nbcore.derive import waived_skip_dates
    from nbcore.params import build_params
    from nbcore.warehouse import open_warehouse

    params, _ = loaded
    waivers = tmp_path / "season-waiver.yaml"
    waivers.write_text(yaml.safe_dump({"waivers": [{"source": "bdl_player_boxscores", "season": 2024, **WAIVER}]}))
    params = build_params({**params.model_dump(mode="json"), "waivers": str(waivers)}, "test", tmp_path)
    # every box score of 2024-25 is loaded: the waiver covers the season, but no date lacks its data
    assert waived_skip_dates(params) == []
    # a date whose box scores really are missing is skipped, and only that date
    with open_warehouse(params) as wh:
        day = wh.query("SELECT MIN(game_date) AS d FROM nba_raw.bdl_player_boxscores WHERE season_year = 2024").d.iloc[0]
        wh.execute("DELETE FROM nba_raw.bdl_player_boxscores WHERE game_date = @d", {"d": day})
    assert [d.isoformat() for d in waived_skip_dates(params)] == [str(day)[:10]]
