"""The read-only commands on a DuckDB file they cannot use: held by a writer past the wait (exit 4,
naming the holder and what to do), or damaged (exit 2, naming the file, never blaming another
process)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcore.cli import main

from runbook_helpers import copy_demo

COMMANDS = {"status": ["status"], "plan": ["plan"], "why": ["why", "player_game_summary", "2024-03-31"]}


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    """Another process writing the DuckDB file (as a run's derive would)."""
    code = (f"import duckdb, time\nc = duckdb.connect({str(path)!r})\n"
            f"print('holding', flush=True)\ntime.sleep({seconds})\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "holding"
    return p


@pytest.fixture(scope="module")
def demo_files(small_demo, tmp_path_factory):
    src, _ = small_demo
    return copy_demo(src, tmp_path_factory.mktemp("busy"))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_held_by_a_writer_past_the_wait_exits_4_naming_the_holder(demo_files, command, monkeypatch):
    params, params_file = demo_files
    monkeypatch.setenv("RUNBOOK_DUCKDB_WAIT_S", "1")
    holder = _hold(Path(params.duckdb_path), 60)
    try:
        res = CliRunner().invoke(main, [*COMMANDS[command], "--params", str(params_file)])
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 4, res.output
    assert f"DuckDB file {params.duckdb_path} is held by process {holder.pid} (" in res.output
    assert "import duckdb" in res.output  # the holder's command line
    assert "Wait for it to finish, or close the notebook or process that holds it, then retry" in res.output
    assert "Traceback" not in res.output


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "cut in half":
        path.write_bytes(data[: len(data) // 2])
    elif how == "blocks zeroed":
        path.write_bytes(data[:12] + b"\0" * (len(data) - 12))
    elif how == "bytes flipped":
        path.write_bytes(data[:8192] + bytes(b ^ 0xFF for b in data[8192:300_000]) + data[300_000:])
    elif how == "four bytes":
        path.write_bytes(b"DUCK")
    elif how == "a text file":
        path.write_text("player,points\nA,10\n" * 100)


@pytest.mark.parametrize("how", ["cut in half", "blocks zeroed", "bytes flipped", "four bytes", "a text file"])
def test_a_damaged_file_exits_2_naming_the_file_not_another_process(demo_files, tmp_path, how):
    params, params_file = demo_files
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(Path(params.duckdb_path).read_bytes())
    _damage(damaged, how)
    bad_params = _params_with(params_file, damaged, tmp_path)
    for command, args in COMMANDS.items():
        res = CliRunner().invoke(main, [*args, "--params", str(bad_params)])
        assert res.exit_code == 2, f"{command}: {res.output}"
        assert str(damaged) in res.output, command
        assert "restore it from a backup" in res.output.replace("Restore", "restore"), command
        assert "held by" not in res.output and "another process" not in res.output and "Traceback" not in res.output


def _params_with(params_file: Path, duckdb_path: Path, tmp_path: Path) -> Path:
    import yaml

    data = yaml.safe_load(params_file.read_text())
    data["duckdb_path"] = str(duckdb_path)
    out = tmp_path / "damaged.yaml"
    out.write_text(yaml.safe_dump(data))
    return out
