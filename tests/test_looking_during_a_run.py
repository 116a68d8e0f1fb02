"""Looking never breaks a run: status, plan, why and the validate notebook, polled in a loop while
the whole runbook runs on the small demo, never make the run fail, and each either succeeds or
says that it is waiting for the DuckDB file and who holds it.

Also, on DuckDB directly: a reader and a writer in two processes take turns on one file, and a
reader that cannot get the file within its wait fails naming the holder.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from nbcore.warehouse.duckdb import DuckDBWarehouse
from nbcore.warehouse.duckdb_access import DuckDBBusyError, waiters

from runbook_helpers import copy_demo

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = [sys.executable, "-m", "nbcore.cli"]
WAITING = "waiting for DuckDB file"


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    env.pop("RUNBOOK_NOTIFY_WEBHOOK", None)
    return env


def _readers(params_file: Path, out_dir: Path, day: str) -> list[tuple[str, list[str]]]:
    nb = ROOT / "notebooks" / "00_validate.ipynb"
    return [
        ("status", [*RUNBOOK, "status", "--params", str(params_file)]),
        ("plan", [*RUNBOOK, "plan", "--params", str(params_file)]),
        ("why", [*RUNBOOK, "why", "player_game_summary", day, "--params", str(params_file)]),
        ("validate notebook", [sys.executable, "-m", "papermill", str(nb), str(out_dir / "validate.ipynb"),
                               "-p", "params_file", str(params_file), "--cwd", str(nb.parent)]),
    ]


@pytest.mark.slow
def test_status_plan_why_and_validate_polled_during_a_run_never_fail_it(small_demo, tmp_path):
    src, built = small_demo
    params, params_file = copy_demo(src, tmp_path / "demo")
    day = str(sorted(built.holes.raw_missing["bdl_player_boxscores"])[0])
    run = subprocess.Popen([*RUNBOOK, "run", "--params", str(params_file)], cwd=ROOT, env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reads: list[tuple[str, int, str, float]] = []
    try:
        i = 0
        readers = _readers(params_file, tmp_path, day)
        while run.poll() is None:
            name, cmd = readers[i % len(readers)]
            t0 = time.monotonic()
            r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
            reads.append((name, r.returncode, r.stdout + r.stderr, time.monotonic() - t0))
            i += 1
        run_out = run.stdout.read()
    finally:
        if run.poll() is None:
            run.kill()
    waited = [name for name, _, out, _ in reads if WAITING in out]
    print(f"\nlooking during a run: {len(reads)} reads ({', '.join(f'{n} x{sum(r[0] == n for r in reads)}' for n, _ in readers)}), "
          f"{sum(code == 0 for _, code, _, _ in reads)} succeeded, {len(waited)} waited first, "
          f"longest {max((r[3] for r in reads), default=0):.1f} s")
    assert run.returncode == 0, run_out
    assert "succeeded" in run_out
    assert len(reads) >= len(readers), f"only {len(reads)} reads during the run"
    for name, code, out, _ in reads:
        # a read succeeds; if it could not get the file in time it failed saying so and naming the holder
        assert code == 0 or ("is held by" in out and WAITING in out), f"{name} failed:\n{out[-3000:]}"
    assert any(code == 0 for name, code, _, _ in reads if name == "status")
    # the run itself never failed on a lock: no stage error mentions one
    assert "Conflicting lock" not in run_out and "Could not set lock" not in run_out


def _hold(path: Path, seconds: float, read_only: bool = False) -> subprocess.Popen:
    code = (f"import duckdb, time, sys\nc = duckdb.connect({str(path)!r}, read_only={read_only})\n"
            f"print('holding', flush=True)\ntime.sleep({seconds})\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "holding"
    return p


def test_a_reader_waits_for_a_writer_then_reads(tmp_path):
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT 42 AS x")
    con.close()
    holder = _hold(path, 2.0)
    said: list[str] = []
    wh = DuckDBWarehouse(path, read_only=True)
    from nbcore.warehouse import duckdb_access

    t0 = time.monotonic()
    wh._con = duckdb_access.connect(str(path), True, wait=30, say=said.append)
    assert wh.query("SELECT x FROM t").x.tolist() == [42]
    assert time.monotonic() - t0 >= 1.0  # it waited for the holder to finish
    assert len(said) == 1 and said[0].startswith(WAITING) and f"process {holder.pid}" in said[0]
    holder.wait()
    wh.close()
    assert waiters(str(path)) == []  # the waiting marker is gone


def test_a_reader_that_cannot_get_the_file_names_the_holder(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    holder = _hold(path, 30.0)
    try:
        monkeypatch.setenv("RUNBOOK_DUCKDB_WAIT_S", "1")
        wh = DuckDBWarehouse(path, read_only=True)
        with pytest.raises(DuckDBBusyError) as e:
            wh.query("SELECT 1")
        msg = str(e.value)
        assert f"is held by process {holder.pid}" in msg and "waited 1 s" in msg and "close the notebook" in msg
        assert e.value.exit_code == 4
    finally:
        holder.kill()
        holder.wait()


def test_an_idle_warehouse_lets_go_of_the_file(tmp_path):
    """A notebook kernel that ran a query and sits idle does not keep the file from the run."""
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    wh = DuckDBWarehouse(path)
    wh.execute("CREATE TABLE t (x INT)")
    assert wh._con is not None
    deadline = time.monotonic() + 10
    while wh._con is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert wh._con is None
    other = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).execute('INSERT INTO t VALUES (1)')"],
                           capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert wh.query("SELECT COUNT(*) AS n FROM t").n.tolist() == [1]  # and it reopens on the next query
