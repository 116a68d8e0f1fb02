"""Hostile inputs from outside (issue 23, and the notification part of issue 24), on real runs of the
small demo:

- ``runbook resume`` never creates a warehouse: with ``duckdb_path`` gone it exits 2 naming the field,
  creates no file and leaves the run resumable; once the file is back it succeeds, with tables equal
  to an uninterrupted run's;
- a bad webhook URL (``notify_webhook`` or ``$RUNBOOK_NOTIFY_WEBHOOK``) is refused with the other
  parameters (exit 2, nothing written); one found only at the end is logged and the run keeps its
  exit code;
- a notification has a total deadline and is sent with the lock released and the manifest final:
  a webhook that drips one byte every 2 s holds nothing up;
- run ids and run names outside the run-id rule exit 2; names and paths are printed with control
  characters escaped.

(The printed advice under a path with a space and ``ü €`` is run as printed in
``test_advice_commands.py``.)
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcore.cli import main
from nbcore.lock import RunLockedError, WarehouseLock
from nbcore.notify import ENV_WEBHOOK, NOTIFY_DEADLINE_S
from nbcore.runbook import run_runbook
from nbcore.sources import GAMEBOOK, file_path
from nbcore.warehouse import open_warehouse

from runbook_helpers import copy_demo
from test_params_corpus import _set, _setup, _tree

FIRST_HOLE = "2024-03-31"  # the small demo's first raw hole (its gamebook is not loaded)
BAD_WEBHOOKS = ["http://127.0.0.1:99999/hook", "http://127.0.0.1:abc/hook", "http://::1:8080/hook"]
TERMINAL_CONTROL = "x\x1b]0;TITLE\x07\x1b[31mred"  # sets a terminal's title and colour when printed raw


def invoke(args: list[str], **env: str):
    """A ``runbook`` command in this process; returns (exit code, stdout + stderr)."""
    result = CliRunner().invoke(main, args, env=env or None)
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in out, out
    return result.exit_code, out


def checksums(params) -> dict[str, str]:
    with open_warehouse(params, read_only=True) as wh:
        return wh.checksums()


def lock_is_free(params) -> bool:
    """Whether another writer could take the warehouse now (the lock's own answer, not a file test)."""
    try:
        WarehouseLock(params, "probe-lock-free").acquire().release()
    except RunLockedError:
        return False
    return True


# -- resume never creates a warehouse ---------------------------------------------------------------
def _scenario(small_demo, root: Path, **extra):
    return copy_demo(small_demo[0], root, start_date=FIRST_HOLE, end_date=FIRST_HOLE,
                     stages=["load", "gate", "derive"], **extra)


@pytest.mark.slow
def test_resume_without_its_warehouse_exits_2_creates_nothing_and_resumes_later(small_demo, tmp_path):
    reference, _ = _scenario(small_demo, tmp_path / "reference")
    uninterrupted = run_runbook(reference, echo=None)
    assert uninterrupted.exit_code == 0, uninterrupted.describe()

    # create_warehouse: true in the run's own parameters, and still a resume never creates one
    params, _ = _scenario(small_demo, tmp_path / "blocked", create_warehouse=True)
    gamebook = Path(params.bucket) / file_path(GAMEBOOK, date.fromisoformat(FIRST_HOLE))
    good = gamebook.read_bytes()
    gamebook.write_bytes(good[: len(good) // 3])  # a broken file: load fails it, the gate blocks
    blocked = run_runbook(params, echo=None)
    assert (blocked.exit_code, blocked.stopped_at) == (3, "gate"), blocked.describe()

    gamebook.write_bytes(good)  # the operator fetched the file again ...
    warehouse = Path(params.duckdb_path)
    moved = warehouse.with_name("moved-away.duckdb")
    warehouse.rename(moved)  # ... but the warehouse is not there any more (moved, a disk not mounted)
    manifest_before = (blocked.run_dir / "manifest.json").read_bytes()
    tree_before = _tree(warehouse.parent)
    for extra in ([], ["--from", "load"]):
        code, out = invoke(["resume", blocked.run_id, "--archive-dir", str(params.archive_dir), *extra])
        assert code == 2, out
        assert "duckdb_path" in out and "never creates a warehouse" in out
        assert not warehouse.exists() and _tree(warehouse.parent) == tree_before  # no file, no lock, no archive
        assert (blocked.run_dir / "manifest.json").read_bytes() == manifest_before  # still the blocked run

    moved.rename(warehouse)  # the file is back: the same resume succeeds
    code, out = invoke(["resume", blocked.run_id, "--archive-dir", str(params.archive_dir), "--from", "load"])
    assert code == 0, out
    manifest = json.loads((blocked.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["resumes"][0]["from"] == "load"
    assert checksums(params) == checksums(reference)


# -- webhook URLs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("url", BAD_WEBHOOKS)
def test_a_bad_webhook_url_exits_2_before_any_archive(tmp_path, url):
    path = _setup(tmp_path, _set(notify_webhook=url))
    before = _tree(tmp_path)
    code, out = invoke(["run", "--params", str(path)])
    assert code == 2, out
    assert "notify_webhook" in out and "http://[::1]:8080/hook" in out  # the field, and the rule's example
    assert _tree(tmp_path) == before  # no archive, no lock, no warehouse


@pytest.mark.parametrize("url", BAD_WEBHOOKS)
def test_a_bad_webhook_url_in_the_environment_exits_2_before_any_archive(tmp_path, url):
    path = _setup(tmp_path, None)
    before = _tree(tmp_path)
    code, out = invoke(["run", "--params", str(path)], **{ENV_WEBHOOK: url})
    assert code == 2, out
    assert f"${ENV_WEBHOOK}" in out
    assert _tree(tmp_path) == before


@pytest.mark.slow  # runs the stage notebooks on the small demo
def test_a_bad_webhook_url_found_only_at_the_end_keeps_the_runs_exit_code(small_demo, tmp_path, monkeypatch):
    """``run_runbook`` called from Python checks no environment up front: the bad URL is met when the blocked
    run notifies, is logged and recorded, and the run still exits 3."""
    params, _ = copy_demo(small_demo[0], tmp_path, start_date=FIRST_HOLE, end_date=FIRST_HOLE, stages=["gate"])
    monkeypatch.setenv(ENV_WEBHOOK, BAD_WEBHOOKS[0])
    out = run_runbook(params, echo=None)
    assert (out.status, out.exit_code) == ("blocked", 3), out.describe()
    note = json.loads((out.run_dir / "manifest.json").read_text())["notification"]
    assert note["delivered"] is False and "not sent" in note["error"] and "port" in note["error"]
    assert lock_is_free(params)


class DripWebhook:
    """A webhook server that answers one byte every 2 s, for as long as the test lets it; it notes, when
    the POST arrives, whether the warehouse lock is free and what the run's manifest says."""

    def __init__(self, observe):
        self.stop = threading.Event()
        self.seen: list[dict] = []
        self.bytes_sent = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.seen.append(observe())
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * 100:
                    if outer.stop.wait(2.0):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    outer.bytes_sent += 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/runbook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "DripWebhook":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow  # waits out the notification deadline
def test_a_dripping_webhook_holds_neither_the_lock_nor_the_run(small_demo, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_WEBHOOK, raising=False)
    params, _ = copy_demo(small_demo[0], tmp_path, start_date=FIRST_HOLE, end_date=FIRST_HOLE, stages=["gate"])
    archive = Path(params.archive_dir)

    def observe() -> dict:
        manifest = json.loads(next(archive.glob("*/manifest.json")).read_text())
        return {"lock_free": lock_is_free(params), "status": manifest["status"], "exit_code": manifest["exit_code"]}

    with DripWebhook(observe) as hook:
        out = run_runbook(params.model_copy(update={"notify_webhook": hook.url}), echo=None)
        still_dripping = not hook.stop.is_set() and hook.bytes_sent < len(b"HTTP/1.1 200 OK\r\n")
    assert (out.status, out.exit_code) == ("blocked", 3), out.describe()
    # when the webhook was called, the run was over: lock released, manifest final
    assert hook.seen == [{"lock_free": True, "status": "blocked", "exit_code": 3}]
    # the run gave up at its deadline while the server was still sending its status line
    assert still_dripping
    manifest = json.loads((out.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "blocked" and manifest["exit_code"] == 3 and manifest["ended_at"]
    note = manifest["notification"]
    assert note["delivered"] is False and f"{NOTIFY_DEADLINE_S:g} s notification deadline" in note["error"]
    assert lock_is_free(params)


# -- run ids, run names, printed names ---------------------------------------------------------------
@pytest.mark.parametrize("run_id", [TERMINAL_CONTROL, "new\nline", "ü-run", "r" * 101, ".hidden", "-x"])
def test_a_run_id_outside_the_rule_exits_2(tmp_path, run_id):
    path = _setup(tmp_path, None)
    before = _tree(tmp_path)
    code, out = invoke(["run", "--params", str(path), "--run-id", run_id])
    assert code == 2, out
    assert "--run-id" in out and "not a run id" in out
    assert "\x1b" not in out and "\x07" not in out  # the refused value is shown escaped
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("run_name", [TERMINAL_CONTROL, "ü-backfill", ".x"])
def test_a_run_name_outside_the_rule_exits_2(tmp_path, run_name):
    path = _setup(tmp_path, _set(run_name=run_name))
    before = _tree(tmp_path)
    code, out = invoke(["run", "--params", str(path)])
    assert code == 2, out
    assert "run_name" in out and "\x1b" not in out
    assert _tree(tmp_path) == before


@pytest.mark.slow  # runs the stage notebooks on the small demo
def test_archive_names_and_paths_are_printed_with_control_characters_escaped(small_demo, tmp_path):
    params, params_file = copy_demo(small_demo[0], tmp_path, start_date=FIRST_HOLE, end_date=FIRST_HOLE,
                                    stages=["gate"])
    run = run_runbook(params, echo=None)
    assert run.exit_code == 3, run.describe()
    # an archive folder whose name was made elsewhere (copied in, renamed by hand) holds control characters
    odd = run.run_dir.with_name(TERMINAL_CONTROL)
    shutil.copytree(run.run_dir, odd)
    manifest = json.loads((odd / "manifest.json").read_text())
    (odd / "manifest.json").write_text(json.dumps({**manifest, "run_id": odd.name, "run_name": odd.name}))
    code, listing = invoke(["runs", "--archive-dir", str(params.archive_dir)])
    assert code == 0 and run.run_id in listing
    code, opened = invoke(["open", "x", "--archive-dir", str(params.archive_dir)])
    assert code == 0 and opened.strip().endswith("summary.md"), opened
    for out in (listing, opened):
        assert "\x1b" not in out and "\x07" not in out
        assert "\\x1b]0;TITLE\\a" in out
