"""Every command the runbook prints as advice is run here exactly as printed (through a shell,
``&&`` and all), in the scenario that prints it, and succeeds.

- ``runbook gate`` blocks on raw holes and prints ``Retry: runbook load … && runbook resume <gate-run-id>``
  (the resume takes over the gate's own archive);
- a run that blocks at the gate prints the same retry in its reason, ``resume with: …`` and
  sends it to the webhook;
- a run whose derive stops on a defensive check prints ``Fix: runbook load …`` and ``resume with: …``;
- ``runbook why`` prints the ``runbook run`` that fills a gap;
- ``runbook load`` with a file that stays broken prints ``retry with: runbook load … --retry-failed <run>``.

Every scenario runs under a folder whose path holds a space and ``ü €`` (issue 23): the printed
commands are shell-quoted (``nbcore.shell``), so they run as printed there too.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from nbcore.params import PROJECT_ROOT
from nbcore.sources import GAMEBOOK, file_path

from runbook_helpers import Webhook, copy_demo

BIN = Path(sys.executable).parent
FIRST_HOLE = "2024-03-31"  # the small demo's first raw hole
pytestmark = pytest.mark.slow  # every command runs through a shell, most of them a stage notebook
HOSTILE_DIR = "sp ace/ü €"  # a space and non-ASCII characters in every path of the scenario


def sh(command: str, **env: str) -> subprocess.CompletedProcess:
    """Run a printed command line as a person would paste it into a shell."""
    full_env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(["bash", "-c", command], cwd=PROJECT_ROOT, env=full_env, capture_output=True, text=True,
                          timeout=600)


def printed(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found, f"no advice matching {pattern!r} in:\n{text}"
    return found.group(1).strip()


def argument(command: str, name: str) -> str:
    """The value of option ``name`` (or, for a positional, the word after it) in a printed command line, as the
    shell reads it."""
    words = shlex.split(command)
    return words[words.index(name) + 1]


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.fixture
def before_state(small_demo, tmp_path):
    """A private copy of the small demo in its before state (raw holes open), one hole's date range."""
    return copy_demo(small_demo[0], tmp_path / HOSTILE_DIR / "demo", start_date=FIRST_HOLE, end_date=FIRST_HOLE,
                     stages=["load", "gate", "derive"])


def test_gate_retry_advice_runs_as_printed(before_state):
    params, params_file = before_state
    gate = sh(f"runbook gate --params {shlex.quote(str(params_file))}")
    assert gate.returncode == 3, gate.stderr
    retry = printed(r"Retry: (.+)", gate.stdout)
    assert retry.startswith("runbook load --params") and " && runbook resume " in retry

    fixed = sh(retry)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    gate_run = Path(argument(retry, "--archive-dir")) / argument(retry, "resume")
    m = manifest(gate_run)  # the gate's own archive became a run that went on from the gate
    steps = {s["name"]: s for s in m["stages"]}
    assert m["status"] == "succeeded"
    assert steps["load"]["status"] == "skipped" and "runbook gate" in steps["load"]["error"]
    assert steps["gate"]["status"] == steps["derive"]["status"] == "succeeded"
    assert (gate_run / "stages" / "attempts" / "gate-1.json").exists()  # the blocked verdict is kept


def test_blocked_run_advice_and_notification_run_as_printed(before_state):
    params, params_file = before_state
    with Webhook() as hook:
        run = sh(f"runbook run --params {shlex.quote(str(params_file))} --stages gate,derive",
                 RUNBOOK_NOTIFY_WEBHOOK=hook.url)
    assert run.returncode == 3, run.stdout + run.stderr
    resume = printed(r"resume with: (.+)", run.stdout)
    retry = printed(r"Retry: (.+?)\n", run.stdout)
    assert retry.endswith(resume)  # the gate's advice ends with the driver's resume hint
    assert [h["json"]["resume_command"] for h in hook.received] == [resume]

    fixed = sh(retry)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    again = sh(resume)  # the hint stays safe to run: nothing is left to do
    assert again.returncode == 0, again.stdout + again.stderr
    run_dir = Path(printed(r"archive: (.+)", run.stdout))
    assert HOSTILE_DIR in str(run_dir)
    assert manifest(run_dir)["status"] == "succeeded"
    assert [s["status"] for s in manifest(run_dir)["stages"]] == ["succeeded", "succeeded"]


def test_failed_derive_fix_and_resume_run_as_printed(before_state):
    params, params_file = before_state
    # the analytics of the game date after the raw hole went missing: derive plans it, and the
    # windows that then read the hole (blocked, since load is not part of this run) stop it
    from nbcore.warehouse import open_warehouse

    with open_warehouse(params) as wh:
        after = wh.query("SELECT MIN(game_date) AS d FROM nba_raw.nbac_schedule WHERE game_status = 'final' "
                         "AND game_date > @d", {"d": date.fromisoformat(FIRST_HOLE)}).d.iloc[0]
        after = pd.Timestamp(after).date()
        wh.execute("DELETE FROM nba_analytics.player_game_summary WHERE game_date = @d", {"d": after})
    run = sh(f"runbook run --params {shlex.quote(str(params_file))} --stages derive --end-date {after}")
    assert run.returncode == 1, run.stdout + run.stderr
    fix = printed(r"Fix: (runbook [^(]+?) \(", run.stdout)
    resume = printed(r"resume with: (.+)", run.stdout)

    for command in (fix, resume):
        done = sh(command)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    run_dir = Path(printed(r"archive: (.+)", run.stdout))
    assert HOSTILE_DIR in str(run_dir)
    m = manifest(run_dir)
    assert m["status"] == "succeeded" and m["rows_written"]  # derive filled the hole on resume


def test_why_fill_command_runs_as_printed(before_state):
    params, params_file = before_state
    why = sh(f"runbook why player_game_summary {FIRST_HOLE} --params {shlex.quote(str(params_file))}")
    assert why.returncode == 0, why.stderr
    fill = printed(r"fill it with:\n\s*(.+)", why.stdout)
    assert fill.startswith("runbook run ")

    done = sh(fill)
    assert done.returncode == 0, done.stdout + done.stderr
    after = sh(f"runbook why player_game_summary {FIRST_HOLE} --params {shlex.quote(str(params_file))} --json")
    assert json.loads(after.stdout)["status"] == "present"


def test_load_retry_advice_runs_as_printed(before_state):
    params, params_file = before_state
    broken = Path(params.bucket) / file_path(GAMEBOOK, date.fromisoformat(FIRST_HOLE))
    good = broken.read_bytes()
    broken.write_bytes(good[: len(good) // 3])  # truncated: fails twice, logged to failures.csv
    load = sh(f"runbook load --params {shlex.quote(str(params_file))} --no-progress")
    assert load.returncode == 1, load.stdout + load.stderr
    retry = printed(r"retry with: (.+)", load.stderr)
    assert "--retry-failed" in retry

    broken.write_bytes(good)  # the operator fetched the file again
    done = sh(retry)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stderr
