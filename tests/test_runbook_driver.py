"""The runbook driver's mechanics, with tiny stand-in notebooks (one kernel start each):
failure markers, blocked gates, exit codes, resume, the warehouse lock and the webhook."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from bqserver import BigQueryLoopback
from nbcore import lock as locks
from nbcore.cli import main
from nbcore.errors import UsageError
from nbcore.params import build_params
from nbcore.runbook import list_runs, params_hash, resume_run, run_runbook

from runbook_helpers import Webhook, write_stage_notebook

RECORD = """
import json, pathlib
from nbcore.archive import RunArchive
archive = RunArchive.open(run_dir)
"""


def _params(tmp_path: Path, stages, **extra):
    if not (tmp_path / "wh.duckdb").exists():  # the warehouse the runs point at exists (a resume never creates one)
        duckdb.connect(str(tmp_path / "wh.duckdb")).close()
    data = {"run_name": "mech", "duckdb_path": str(tmp_path / "wh.duckdb"), "bucket": str(tmp_path),
            "archive_dir": str(tmp_path / "runs"), "stages": stages}
    data.update(extra)
    return build_params(data, "test", tmp_path)


@pytest.fixture
def nbdir(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    return d


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_failed_stage_keeps_marker_stops_run_and_notifies(tmp_path, nbdir):
    write_stage_notebook(nbdir / "01_load.ipynb", RECORD + "archive.record_stage('load', {'status': 'succeeded', 'rows_written': {'nba_raw.x': 5}, 'retries': 1})")
    write_stage_notebook(nbdir / "02_gate.ipynb", "raise RuntimeError('bucket unreachable: boom-42')")
    write_stage_notebook(nbdir / "03_derive.ipynb", "open(run_dir + '/derive-ran', 'w').write('x')")
    with Webhook() as hook:
        params = _params(tmp_path, ["load", "gate", "derive"], notify_webhook=hook.url)
        out = run_runbook(params, notebooks_dir=nbdir, echo=None)
    assert (out.status, out.exit_code) == ("failed", 1)
    m = json.loads((out.run_dir / "manifest.json").read_text())
    steps = {s["name"]: s for s in m["stages"]}
    assert [s["name"] for s in m["stages"]] == ["load", "gate", "derive"]
    assert steps["load"]["status"] == "succeeded" and steps["load"]["record"]["retries"] == 1
    assert steps["gate"]["status"] == "failed" and "boom-42" in steps["gate"]["error"]
    assert steps["derive"]["status"] == "pending" and not (out.run_dir / "derive-ran").exists()
    assert m["stopped_at"] == "gate" and m["rows_written"] == {"nba_raw.x": 5}
    assert m["params_hash"] == params_hash(params.public_dict())
    # papermill's failure marker is kept, and the stage's HTML shows the error
    nb = json.loads((out.run_dir / "02_gate.ipynb").read_text())
    assert any("papermill-error-cell" in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    html = (out.run_dir / "02_gate.html").read_text()
    assert "boom-42" in html and "RuntimeError" in html
    # the webhook got stage, reason and the resume command
    assert len(hook.received) == 1
    payload = hook.received[0]["json"]
    assert payload["stage"] == "gate" and "boom-42" in payload["reason"] and payload["status"] == "failed"
    assert payload["resume_command"].startswith(f"runbook resume {out.run_id}")
    assert m["notification"]["delivered"] is True
    assert str(hook.server.server_port) in m["notification"]["webhook"] and "hooks" not in m["notification"]["webhook"]


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_blocked_gate_stops_downstream_exit_3(tmp_path, nbdir):
    write_stage_notebook(nbdir / "02_gate.ipynb", RECORD + "archive.record_stage('gate', {'status': 'blocked', 'reason': '3 raw dates missing'})")
    write_stage_notebook(nbdir / "03_derive.ipynb", "open(run_dir + '/derive-ran', 'w').write('x')")
    with Webhook() as hook:
        out = run_runbook(_params(tmp_path, ["gate", "derive"], notify_webhook=hook.url), notebooks_dir=nbdir, echo=None)
    assert (out.status, out.exit_code, out.stopped_at) == ("blocked", 3, "gate")
    assert out.reason == "3 raw dates missing"
    assert not (out.run_dir / "derive-ran").exists()
    assert hook.received[0]["json"]["status"] == "blocked"
    assert (out.run_dir / "summary.md").read_text().startswith(f"# Backfill run `{out.run_id}` — blocked")


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_undeliverable_webhook_is_logged_never_fails(tmp_path, nbdir, caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_stage_notebook(nbdir / "01_load.ipynb", "raise ValueError('nope')")
    out = run_runbook(_params(tmp_path, ["load"], notify_webhook=f"http://127.0.0.1:{port}/x"), notebooks_dir=nbdir, echo=None)
    assert out.exit_code == 1  # the stage's failure, not the notification's
    note = out.manifest["notification"]
    assert note["delivered"] is False and note["error"]
    assert any("not delivered" in r.message for r in caplog.records)


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_missing_notebooks_are_skipped(tmp_path, nbdir):
    write_stage_notebook(nbdir / "01_load.ipynb", "x = 1")
    out = run_runbook(_params(tmp_path, ["validate", "load", "report"]), notebooks_dir=nbdir, echo=None)
    assert out.status == "succeeded"
    status = {s["name"]: s["status"] for s in out.manifest["stages"]}
    assert status == {"validate_before": "skipped", "load": "succeeded", "validate_after": "skipped", "report": "skipped"}


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_resume_continues_without_redoing_finished_stages(tmp_path, nbdir):
    write_stage_notebook(nbdir / "01_load.ipynb", "import pathlib; p = pathlib.Path(run_dir, 'load-count'); "
                                                  "p.write_text(str(int(p.read_text()) + 1) if p.exists() else '1')")
    flag = tmp_path / "gate-ok"
    write_stage_notebook(nbdir / "02_gate.ipynb", f"import os\nassert os.path.exists({str(flag)!r}), 'raw incomplete'")
    params = _params(tmp_path, ["load", "gate"])
    first = run_runbook(params, notebooks_dir=nbdir, echo=None)
    assert first.status == "failed" and first.stopped_at == "gate"
    load_started = first.manifest["stages"][0]["started_at"]

    flag.write_text("fixed")
    second = resume_run(first.run_id, archive_dir=params.archive_dir, notebooks_dir=nbdir, echo=None)
    assert second.run_id == first.run_id and second.status == "succeeded"
    assert (first.run_dir / "load-count").read_text() == "1"  # load not redone
    m = second.manifest
    assert m["stages"][0]["started_at"] == load_started
    assert [r["from"] for r in m["resumes"]] == ["gate"]
    assert m["resumes"][0]["params_hash"] == m["params_hash"] and m["git_commit"] == first.manifest["git_commit"]
    # --from restarts an earlier stage
    third = resume_run(first.run_dir, from_stage="load", notebooks_dir=nbdir, echo=None)
    assert third.status == "succeeded" and (first.run_dir / "load-count").read_text() == "2"
    runs = list_runs(params.archive_dir)
    assert list(runs.run_id) == [first.run_id] and runs.status.iloc[0] == "succeeded"


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_record_is_read_by_step_name_and_an_earlier_attempts_record_is_set_aside(tmp_path, nbdir):
    flag = tmp_path / "raw-loaded"
    write_stage_notebook(nbdir / "02_gate.ipynb", RECORD + f"""
import os
if os.path.exists({str(flag)!r}):
    archive.record_stage('gate', {{'status': 'passed', 'reason': 'gate passed', 'rows_written': {{}}}})
else:
    archive.record_stage('gate', {{'status': 'blocked', 'reason': '2 raw dates missing'}})
""")
    # a stage that records failure without raising still fails the step, with the record's reason
    write_stage_notebook(nbdir / "03_derive.ipynb", RECORD + "archive.record_stage('derive', {'status': 'failed', 'reason': 'chunk 2024-01-03 failed'})")
    params = _params(tmp_path, ["gate", "derive"])
    first = run_runbook(params, notebooks_dir=nbdir, echo=None)
    assert (first.status, first.reason) == ("blocked", "2 raw dates missing")

    flag.write_text("loaded")
    second = resume_run(first.run_id, archive_dir=params.archive_dir, notebooks_dir=nbdir, echo=None)
    steps = {s["name"]: s for s in second.manifest["stages"]}
    assert steps["gate"]["status"] == "succeeded" and steps["gate"]["record"]["status"] == "passed"
    assert (second.status, second.stopped_at, second.reason) == ("failed", "derive", "chunk 2024-01-03 failed")
    attempts = first.run_dir / "stages" / "attempts"
    assert json.loads((attempts / "gate-1.json").read_text())["status"] == "blocked"
    assert json.loads((first.run_dir / "stages" / "gate.json").read_text())["status"] == "passed"


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_resume_refuses_a_folder_that_is_not_a_run_archive(tmp_path, nbdir):
    params = _params(tmp_path, ["gate"])
    (tmp_path / "runs" / "holiday-photos").mkdir(parents=True)
    r = CliRunner().invoke(main, ["resume", "holiday-photos", "--archive-dir", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "no run 'holiday-photos'" in r.output
    with pytest.raises(UsageError, match="not a run archive"):
        run_runbook(params, run_id="holiday-photos", notebooks_dir=nbdir, echo=None)


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_lock_refuses_second_run_naming_the_holder(tmp_path, nbdir):
    params = _params(tmp_path, ["load"])
    with locks.WarehouseLock(params, "holder-run-1"):
        with pytest.raises(locks.RunLockedError, match="holder-run-1"):
            run_runbook(params, notebooks_dir=nbdir, echo=None)
        assert not Path(params.archive_dir).exists()  # a refused run leaves no archive
    assert not locks.lock_path(params).exists()


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_stale_lock_is_detected_taken_over_and_releasable(tmp_path, nbdir):
    params = _params(tmp_path, ["load"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = locks.lock_path(params)
    path.write_text(json.dumps({"run_id": "crashed-run", "pid": dead.pid, "host": socket.gethostname(),
                                "started_at": "2026-01-01T00:00:00+00:00"}))
    _, holder, stale = locks.lock_status(params)
    assert holder.run_id == "crashed-run" and stale
    write_stage_notebook(nbdir / "01_load.ipynb", "x = 1")
    out = run_runbook(params, notebooks_dir=nbdir, echo=None)
    assert out.status == "succeeded"
    assert out.manifest["stale_locks_released"][0]["run_id"] == "crashed-run"
    assert not path.exists()

    # a lock held from another host is never taken over; `runbook unlock --force` releases it
    path.write_text(json.dumps({"run_id": "remote-run", "pid": 1, "host": "elsewhere", "started_at": "x"}))
    with pytest.raises(locks.RunLockedError, match="remote-run"):
        run_runbook(params, notebooks_dir=nbdir, echo=None)
    pfile = tmp_path / "p.yaml"
    pfile.write_text(f"duckdb_path: {params.duckdb_path}\nbucket: {tmp_path}\narchive_dir: {params.archive_dir}\n")
    r = CliRunner().invoke(main, ["unlock", "--params", str(pfile)])
    assert r.exit_code == 4 and "remote-run" in r.output
    r = CliRunner().invoke(main, ["unlock", "--params", str(pfile), "--force"])
    assert r.exit_code == 0 and "remote-run" in r.output and not path.exists()


@pytest.mark.zetasql  # the driver's lease on the loopback BigQuery
def test_secret_env_reaches_kernel_but_not_the_archive(tmp_path, nbdir):
    secret = "/vault/sa-TOPSECRET-91c7.json"
    write_stage_notebook(nbdir / "01_load.ipynb", "import os\n"
                         "from nbcore import notebook\n"
                         "params, archive = notebook.setup(params_file, run_dir, globals())\n"
                         "print(params)\n"
                         "assert params.bigquery.credentials_path.get_secret_value() == os.environ['RUNBOOK_CREDENTIALS_PATH']\n"
                         "print('secret seen by the kernel:', len(os.environ['RUNBOOK_CREDENTIALS_PATH']), 'chars')")
    before = os.environ.get("RUNBOOK_CREDENTIALS_PATH")
    # the driver takes the warehouse lease on BigQuery: a loopback server stands in for the project
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        params = _params(tmp_path, ["load"], backend="bigquery",
                         bigquery={"project": "demo-project", "credentials_path": secret, "api_endpoint": srv.endpoint})
        out = run_runbook(params, notebooks_dir=nbdir, echo=None)
    assert out.status == "succeeded", out.reason
    assert os.environ.get("RUNBOOK_CREDENTIALS_PATH") == before
    for f in out.run_dir.rglob("*"):
        if f.is_file():
            assert b"TOPSECRET" not in f.read_bytes(), f


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
@pytest.mark.parametrize("code, status", [("x = 1", "succeeded"), ("raise ValueError('no')", "failed")])
def test_a_run_prints_no_kernel_noise(tmp_path, nbdir, capfd, code, status):
    """No ipykernel ERROR line (a kernel interrupted at shutdown) and no TCP warning on the
    terminal, whether the stage succeeded or raised."""
    write_stage_notebook(nbdir / "01_load.ipynb", code)
    out = run_runbook(_params(tmp_path, ["load"]), notebooks_dir=nbdir, echo=None)
    assert out.status == status
    seen = capfd.readouterr()
    noise = seen.out + seen.err
    assert "KeyboardInterrupt caught in kernel" not in noise and "ERROR |" not in noise, noise
    assert "without encryption" not in noise, noise
