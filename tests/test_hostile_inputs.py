"""Inputs from the hostile-input round (issue 24) that need a real demo league: each refused with
its documented exit code and a message naming the file or field, no traceback, and nothing left
behind (no archive, no lock file)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from runbook_helpers import copy_demo


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbcore.cli", *args], capture_output=True, text=True, timeout=600)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


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
