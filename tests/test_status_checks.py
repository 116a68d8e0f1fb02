"""``runbook status`` in the terminal is the partition state (what a person polls mid-backfill);
the sanity checks run with ``--checks`` (and always in ``--json`` and in a run's validate steps)."""
from __future__ import annotations

import json
import re

from click.testing import CliRunner

from nbcore.cli import main

from runbook_helpers import copy_demo


def test_terminal_status_shows_the_state_and_runs_the_checks_only_when_asked(small_demo, tmp_path):
    _, params_file = copy_demo(small_demo[0], tmp_path / "demo")
    plain = CliRunner().invoke(main, ["status", "--params", str(params_file)])
    assert plain.exit_code == 0, plain.output
    assert "Completeness" in plain.output and "Missing dates" in plain.output
    assert "Sanity checks: not run (add --checks" in plain.output

    checked = CliRunner().invoke(main, ["status", "--params", str(params_file), "--checks"])
    assert checked.exit_code == 0, checked.output
    n_checks = len(json.loads(CliRunner().invoke(main, ["status", "--params", str(params_file), "--json"]).stdout)["checks"])
    assert n_checks > 0
    line = next(l for l in checked.output.splitlines() if l.startswith("Sanity checks:"))
    passed, failed, warned = (int(w) for w in re.findall(r"(\d+) (?:passed|failed|warned)", line))
    assert passed + failed + warned == n_checks  # every check ran, as in --json
    # the grid itself is the same with or without the checks
    assert plain.output.split("Sanity checks")[0] == checked.output.split("Sanity checks")[0]
