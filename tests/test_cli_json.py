"""One consistent CLI (issue 22): every command that prints data takes ``--json`` and prints one JSON
document (parsed here, on the small demo); every command's help lists its exit codes and every
option says what it takes; ``runbook --version``; ``runbook status --check`` exits 5 while dates are
open; ``runbook runs`` is a rich table without NaN/None, newest first with named runs in time order;
a stage run on its own (``gate`` included) leaves a listed archive with a manifest."""
from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from nbcore.cli import EXIT_CODES, main

from runbook_helpers import copy_demo

HOLE = "2024-03-31"  # the small demo's first raw hole (the gamebook never loaded)


def cli(*args) -> click.testing.Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def as_json(result: click.testing.Result):
    """The command's stdout parsed as one JSON document (nothing else may be printed there)."""
    return json.loads(result.stdout)


@pytest.fixture
def one_date(small_demo, tmp_path):
    """The small demo's before state, scoped to one raw hole's date."""
    return copy_demo(small_demo[0], tmp_path / "demo", start_date=HOLE, end_date=HOLE)


def test_version_is_the_installed_one():
    r = cli("--version")
    assert r.exit_code == 0 and r.output.strip() == f"runbook, version {version('backfill-runbook')}"


def test_every_command_documents_its_exit_codes_and_every_option():
    top = cli("--help")
    assert top.exit_code == 0
    for code in EXIT_CODES:  # the group's help has the whole table
        assert re.search(rf"^\s+{code}  \S", top.output, re.M), code
    for name, command in main.commands.items():
        r = cli(name, "--help")
        assert r.exit_code == 0 and "Exit codes:" in r.output, name
        assert re.search(r"^\s+2  bad parameters or usage", r.output, re.M), name  # every command can be misused
        for p in command.params:
            if isinstance(p, click.Option) and p.name != "help":
                assert p.help, f"runbook {name} {p.opts[0]} has no help text"
    run_help = cli("run", "--help").output
    for code in (0, 1, 2, 3, 4, 129, 130, 143):
        assert re.search(rf"^\s+{code}  \S", run_help, re.M), code
    assert re.search(r"^\s+5  status --check", cli("status", "--help").output, re.M)


def test_json_on_every_data_command(one_date):
    params, params_file = one_date
    p = ["--params", params_file]

    r = cli("status", *p, "--json")
    assert r.exit_code == 0, r.output
    status = as_json(r)
    states = {t["table"]: t["states"] for t in status["tables"]}
    assert states["nbac_gamebook_player_stats"] == {HOLE: "missing"}
    assert states["player_game_summary"] == {HOLE: "blocked"}
    assert cli("status", *p, "--check").exit_code == 5  # the hole is open

    r = cli("plan", *p, "--json")
    assert r.exit_code == 0, r.output
    assert {t["table"] for t in as_json(r)["tables"]} >= {"nbac_gamebook_player_stats", "player_game_summary"}

    r = cli("why", "player_game_summary", HOLE, *p, "--json")
    assert r.exit_code == 0, r.output
    why = as_json(r)
    assert why["table"] == "player_game_summary" and why["state"] in ("missing", "blocked") and why["command"]

    r = cli("runs", *p, "--json")
    assert r.exit_code == 0 and as_json(r) == []

    # the gate on its own blocks (exit 3) and leaves a listed archive whose manifest says so
    r = cli("gate", *p, "--json")
    assert r.exit_code == 3, r.output
    gate = as_json(r)
    assert gate["status"] == "blocked" and any(m["date"] == HOLE for m in gate["missing"])
    runs = as_json(cli("runs", *p, "--json"))
    assert [(x["kind"], x["status"]) for x in runs] == [("interactive", "blocked")]
    gate_dir = Path(params.archive_dir) / runs[0]["run_id"]
    assert json.loads((gate_dir / "manifest.json").read_text())["stages"][0]["name"] == "gate"

    r = cli("load", *p, "--json")
    assert r.exit_code == 0, r.output
    load = as_json(r)
    assert load["loaded"] >= 2 and load["failed"] == 0 and Path(load["archive"], "manifest.json").is_file()
    r = cli("gate", *p, "--json")
    assert r.exit_code == 0 and as_json(r)["status"] == "passed"

    # derive records into an archive given with --run-dir (like predict and grade)
    r = cli("derive", *p, "--json", "--no-progress", "--run-dir", gate_dir)
    assert r.exit_code == 0, r.output
    derive = as_json(r)
    assert derive["status"] == "succeeded" and derive["dates_processed"] == 1
    assert json.loads((gate_dir / "stages" / "derive.json").read_text())["dates_processed"] == 1

    r = cli("predict", *p, "--json", "--dates", HOLE)
    assert r.exit_code == 0, r.output
    predict = as_json(r)
    assert predict["status"] == "succeeded" and predict["player_games"] > 0
    r = cli("grade", *p, "--json", "--dates", HOLE)
    assert r.exit_code == 0, r.output
    grade = as_json(r)
    assert grade["status"] == "succeeded" and grade["graded"] > 0

    runs = as_json(cli("runs", *p, "--json"))
    # gate, load, gate, predict, grade by hand (derive wrote into the first gate's archive): newest first
    assert len(runs) == 5 and all(x["kind"] == "interactive" for x in runs)
    assert [x["started_at"] for x in runs] == sorted((x["started_at"] for x in runs), reverse=True)
    assert runs[0]["run_id"].endswith("-grade") and runs[-1]["run_id"] == gate_dir.name
    assert cli("status", *p, "--check").exit_code == 0  # nothing open on that date any more


def test_the_terminal_views_read_as_sentences_and_tables(one_date):
    params, params_file = one_date
    p = ["--params", params_file]
    assert cli("load", *p, "--no-progress").exit_code == 0
    r = cli("derive", *p, "--no-progress")
    assert r.exit_code == 0 and r.output.startswith("derive succeeded: 1/1 date in 1 chunk, "), r.output
    r = cli("predict", *p, "--dates", HOLE, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "rows changed" in r.output and " rows," not in r.output
    r = cli("grade", *p, "--dates", HOLE, "--no-progress")
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert " on 1 date " in first and "1 dates" not in first and "{" not in first, first
    r = cli("runs", *p)
    assert r.exit_code == 0 and "-predict" in r.output and "-grade" in r.output
    assert "NaN" not in r.output and "None" not in r.output


def _manifest(folder: Path, run_id: str, started_at: str | None, **extra) -> None:
    (folder / run_id).mkdir(parents=True)
    (folder / run_id / "manifest.json").write_text(json.dumps(
        {"run_id": run_id, "run_name": "x", "status": "succeeded", "started_at": started_at, "seconds": None,
         "params": {"seasons": [2023]}, **extra}))


def test_runs_newest_first_named_runs_by_their_time_and_no_nan(tmp_path):
    runs = tmp_path / "runs"
    _manifest(runs, "20260101-000000-demo", "2026-01-01T00:00:00+00:00", seconds=12.5)
    _manifest(runs, "nightly", "2026-01-02T00:00:00+00:00")  # a named run: sorts by its time, not its name
    _manifest(runs, "20260103-000000-demo", "2026-01-03T00:00:00+00:00", kind="interactive", stopped_at=None)
    (runs / "not-a-run").mkdir()  # no manifest: not listed
    r = cli("runs", "--archive-dir", runs, "--json")
    assert r.exit_code == 0
    assert [x["run_id"] for x in as_json(r)] == ["20260103-000000-demo", "nightly", "20260101-000000-demo"]
    assert as_json(r)[1]["seconds"] is None  # JSON null, never NaN
    table = cli("runs", "--archive-dir", runs).output
    assert "NaN" not in table and "None" not in table
    assert table.index("20260103-000000-demo") < table.index("nightly") < table.index("20260101-000000-demo")
    assert "12.5 s" in table and "interactive" in table


HEAVY = {"papermill", "nbformat", "nbclient", "jupyter_client", "jupyter_core", "ipykernel", "IPython", "zmq",
         "matplotlib"}


@pytest.mark.slow  # CLI subprocesses
def test_read_only_commands_import_only_what_they_need(one_date):
    """``status``, ``plan`` and ``why`` (issue 21): no papermill, Jupyter or matplotlib at import time,
    read off ``python -X importtime`` of the real command."""
    import subprocess
    import sys

    _, params_file = one_date
    for command in (["status"], ["plan"], ["why", "player_game_summary", HOLE]):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "nbcore.cli", *command, "--params", str(params_file)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        modules = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in r.stderr.splitlines()
                   if line.startswith("import time:")}
        assert "duckdb" in modules and not modules & HEAVY, (command, modules & HEAVY)
