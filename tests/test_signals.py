"""A run can be watched and stopped (issue 22): SIGINT / SIGTERM to the driver during load and during
derive stop the run at a chunk boundary, mark it ``interrupted``, print the resume command and exit
130 / 143 without a traceback; the resume ends with tables equal to an uninterrupted run. The run
log has a line per chunk and ``runbook logs --follow`` ends when the run ends. A refused
``resume --set`` writes nothing into the live run's archive."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbcore import schema
from nbcore.lock import lock_path
from nbcore.runbook import NOTEBOOKS_DIR, resume_run
from nbcore.shell import runbook as runbook_command
from nbcore.warehouse import open_warehouse

from conftest import FULL_RUN_CHUNK_DAYS
from runbook_helpers import copy_demo

ROOT = Path(__file__).resolve().parent.parent
CHUNK_DAYS = FULL_RUN_CHUNK_DAYS  # as the reference run: derive commits often, a signal lands between chunks
# the stages a signal is sent during (load, derive) and the gate between them: the resume finishes them, and
# their tables must equal the uninterrupted run's (predict and grade after them run as in any run)
STAGES = ["load", "gate", "derive"]
PHASES = ("2", "3", "4")  # the tables those stages write
CLI = [sys.executable, "-m", "nbcore.cli"]
pytestmark = [pytest.mark.skipif(not (NOTEBOOKS_DIR / "03_derive.ipynb").exists(), reason="derive stage not written yet"),
              pytest.mark.slow]  # real runs, signalled, resumed


def _written(sums: dict) -> dict:
    return {t: v for t, v in sums.items() if schema.table(t).phase in PHASES}


def _checksums(params) -> dict:
    with open_warehouse(params, read_only=True) as wh:
        return _written(wh.checksums())


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("RUNBOOK_NOTIFY_WEBHOOK", None)
    return env


@pytest.fixture
def reference(full_run):
    """An uninterrupted run (conftest.full_run: every stage; validate and report write no table):
    its outcome and its tables' checksums."""
    _, _, out, sums = full_run
    assert (out.status, out.exit_code) == ("succeeded", 0), out.describe()
    return out, _written(sums)


def _wait_for(what: str, cond, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.time() < deadline, f"{what} never happened"
        time.sleep(0.05)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.mark.parametrize("signum,code,during", [
    (signal.SIGINT, 130, "derive"), (signal.SIGTERM, 143, "derive"),
    (signal.SIGINT, 130, "load"), (signal.SIGTERM, 143, "load"), (signal.SIGHUP, 129, "derive"),
    (signal.SIGINT, 130, "derive-twice"),  # a second Ctrl-C stops at once: the kernel is killed mid-chunk
])
def test_signal_stops_at_a_chunk_boundary_and_resume_equals_uninterrupted(reference, small_demo, tmp_path,
                                                                         signum, code, during):
    _, ref_checksums = reference
    params, params_file = copy_demo(small_demo[0], tmp_path / "demo", chunk_days=CHUNK_DAYS, stages=STAGES)
    run_id = f"sig-{during}"
    run_dir = Path(params.archive_dir) / run_id
    log = run_dir / "run.log"
    proc = subprocess.Popen([*CLI, "run", "--params", str(params_file), "--run-id", run_id], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    follower = None
    try:
        _wait_for("run.log", log.exists, proc)
        follower = subprocess.Popen([*CLI, "logs", run_id, "--archive-dir", str(params.archive_dir), "--follow"],
                                    cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if during.startswith("derive"):  # a derive chunk has committed (chunks.jsonl), more are to come
            _wait_for("a derive chunk", lambda: any('"stage": "derive"' in x for x in _lines(run_dir / "chunks.jsonl")),
                      proc)
        else:  # load has started (its kernel is starting): it stops before its first batch, after the schedules
            _wait_for("load", lambda: any("step load started" in x for x in _lines(log)), proc)
        os.kill(proc.pid, signum)  # the driver only, as a scheduler or `kill` would
        if during == "derive-twice":
            _wait_for("the first signal", lambda: any("received: stopping" in x for x in _lines(log)), proc)
            os.kill(proc.pid, signum)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(out)
    assert proc.returncode == code, out
    assert "Traceback" not in out and "Aborted" not in out and "ZMQError" not in out, out
    m = json.loads((run_dir / "manifest.json").read_text())
    name = signal.Signals(signum).name
    assert (m["status"], m["exit_code"], m["interrupted_by"]) == ("interrupted", code, name), m
    resume = runbook_command("resume", run_id, "--archive-dir", Path(params.archive_dir))
    assert m["resume_command"] == resume and f"resume with: {resume}" in out, out
    steps = {s["name"]: s for s in m["stages"]}
    if during == "derive":
        assert m["stopped_at"] == "derive" and steps["derive"]["status"] == "interrupted", m
        # not a terminal: one progress line per chunk as it ends, fed from run.log
        assert re.search(r"^  derive +chunk 1/\d+ \S+ succeeded: [\d,]+ rows in ", out, re.M), out
        assert m["stopped_chunk"] and m["stopped_chunk"] in m["reason"], m
        chunks = steps["derive"]["record"]["chunks"]
        assert {c["status"] for c in chunks} == {"succeeded", "not_run"}, chunks  # nothing failed, nothing half-done
    elif during == "derive-twice":  # stopped at once, wherever derive was: the open chunk rolled back
        assert m["stopped_at"] == "derive" and steps["derive"]["status"] == "interrupted", m
        assert "stopped at once" in m["reason"] or "interrupted by SIGINT before chunk" in m["reason"], m
        assert "Kernel died" not in out, out  # killed on purpose, not reported as a crash
    else:  # stopped inside load at a batch boundary: the files not loaded are loaded by the resume
        assert m["stopped_at"] == "load" and steps["load"]["status"] == "interrupted", m
        assert steps["load"]["record"]["status"] == "interrupted" and "files done" in m["reason"], m
    assert not lock_path(params).exists()
    text = log.read_text()
    assert f"{name} received" in text and "run interrupted" in text
    # `runbook logs --follow` ended by itself when the run ended, having shown the whole log
    follow_out, _ = follower.communicate(timeout=60)
    assert follower.returncode == 0 and "run interrupted" in follow_out, follow_out

    again = resume_run(run_id, archive_dir=params.archive_dir, echo=None)
    assert (again.status, again.exit_code) == ("succeeded", 0), again.describe()
    assert again.manifest["resumes"][0]["from"] == m["stopped_at"]
    assert not lock_path(params).exists() and not (run_dir / "STOP").exists()
    assert _checksums(params) == ref_checksums
    assert "resume from" in log.read_text()


def test_run_log_has_a_line_per_chunk_and_logs_prints_it(reference, small_demo):
    out, _ = reference
    text = (out.run_dir / "run.log").read_text()
    lines = text.splitlines()
    for stage in ("derive", "predict", "grade"):
        rec = json.loads((out.run_dir / "stages" / f"{stage}.json").read_text())
        done = [ln for ln in lines if ln.split()[1] == stage and " succeeded: " in ln and " chunk " in ln]
        assert len(done) == len(rec["chunks"]) > 0, (stage, done)
    assert any(ln.split()[1] == "load" and " batch " in ln for ln in lines)
    assert "step derive started" in text and "run succeeded (exit 0)" in text
    assert all(ln[:4].isdigit() and ln[10] == "T" for ln in lines)  # every line timestamped
    r = subprocess.run([*CLI, "logs", out.run_id, "--archive-dir", str(out.run_dir.parent)], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == text, r.stderr


def test_refused_resume_set_writes_nothing_into_the_live_run(small_demo, tmp_path):
    params, params_file = copy_demo(small_demo[0], tmp_path, chunk_days=30, stages=STAGES)
    run_id = "live"
    run_dir = Path(params.archive_dir) / run_id
    proc = subprocess.Popen([*CLI, "run", "--params", str(params_file), "--run-id", run_id], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for("the first step", lambda: "step " in "".join(_lines(run_dir / "run.log")), proc)
        os.kill(proc.pid, signal.SIGSTOP)  # the driver holds still (its kernel writes no manifest or params)
        try:
            before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.suffix in (".yaml", ".json") and p.is_file()}
            r = subprocess.run([*CLI, "resume", run_id, "--archive-dir", str(params.archive_dir), "--set", "chunk_days=7"],
                               cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
            after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.suffix in (".yaml", ".json") and p.is_file()}
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert r.returncode == 4, r.stdout + r.stderr
        assert run_id in r.stderr
        assert after == before  # params.yaml, manifest.json: byte for byte; no params.resume-1.yaml
        assert not list(run_dir.glob("params.resume-*"))
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=300) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "chunk_days: 30" in (run_dir / "params.yaml").read_text()
    assert not lock_path(params).exists()


def test_progress_updates_in_place_on_a_terminal(small_demo, tmp_path):
    """Under a pseudo-terminal the driver shows one line per stage that updates in place while it runs."""
    import pty

    params, params_file = copy_demo(small_demo[0], tmp_path, chunk_days=CHUNK_DAYS, stages=["load", "gate", "derive"])
    master, slave = pty.openpty()
    proc = subprocess.Popen([*CLI, "run", "--params", str(params_file), "--run-id", "tty"], cwd=ROOT, env=_env(),
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the run ended and closed the terminal
                break
            if not data:
                break
            out += data
    finally:
        proc.wait(timeout=600)
        os.close(master)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    updates = re.findall(r"\r\x1b\[K  derive +chunk (\d+)/(\d+)", text)
    assert len({k for k, _ in updates}) >= 2, text  # the same line showed several chunks as they went
    assert "Traceback" not in text
