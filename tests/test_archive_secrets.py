"""No secret in any file of a run archive, blocked or succeeded, resumed or not.

A webhook URL carries its token in the query (``?token=``), in the path (Slack-style
``/services/T0/B0/<token>``) or as ``user:password@``; the run still notifies the real URL,
but ``params.yaml``, ``manifest.json``, the executed notebooks and every other archived file
keep only ``scheme://host/…``. (The whole-runbook run in ``test_runbook_full`` greps a
succeeded archive of the real notebooks the same way.)
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from nbcore.params import build_params, redact_url
from nbcore.runbook import resume_run, run_runbook

from runbook_helpers import Webhook, write_stage_notebook

TOKENS = ("tok-QUERY-7f3a", "tok-PATH-91b2", "pw-USER-c4d5")

RECORD = "from nbcore.archive import RunArchive\narchive = RunArchive.open(run_dir)\n"
SHOW_PARAMS = ("from nbcore import notebook\n"
               "params, archive = notebook.setup(params_file, run_dir, globals())\n"
               "print(params)\nprint(params.public_dict())\n")


def _secret_url(hook: Webhook) -> str:
    host = hook.url.split("//", 1)[1].split("/", 1)[0]
    return f"http://bot:{TOKENS[2]}@{host}/hooks/services/T0/{TOKENS[1]}?token={TOKENS[0]}&channel=ops"


def _params(tmp_path: Path, stages, **extra):
    if not (tmp_path / "wh.duckdb").exists():  # the warehouse the runs point at exists (a resume never creates one)
        duckdb.connect(str(tmp_path / "wh.duckdb")).close()
    data = {"run_name": "secrets", "duckdb_path": str(tmp_path / "wh.duckdb"), "bucket": str(tmp_path),
            "archive_dir": str(tmp_path / "runs"), "stages": stages}
    data.update(extra)
    return build_params(data, "test", tmp_path)


def _leaks(run_dir: Path) -> list[str]:
    out = []
    for f in sorted(run_dir.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            out += [f"{f.relative_to(run_dir)}: {t}" for t in TOKENS if t.encode() in data]
    return out


@pytest.fixture
def nbdir(tmp_path):
    d = tmp_path / "notebooks"
    write_stage_notebook(d / "01_load.ipynb", SHOW_PARAMS + RECORD + "archive.record_stage('load', {'status': 'succeeded'})")
    return d


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_a_blocked_run_notifies_the_real_url_and_archives_no_token(tmp_path, nbdir, monkeypatch):
    monkeypatch.delenv("RUNBOOK_NOTIFY_WEBHOOK", raising=False)
    write_stage_notebook(nbdir / "02_gate.ipynb", SHOW_PARAMS + RECORD +
                         "archive.record_stage('gate', {'status': 'blocked', 'reason': '2 raw dates missing'})")
    with Webhook() as hook:
        url = _secret_url(hook)
        out = run_runbook(_params(tmp_path, ["load", "gate"], notify_webhook=url), notebooks_dir=nbdir, echo=None)
    assert (out.status, out.exit_code) == ("blocked", 3)
    assert len(hook.received) == 1 and hook.received[0]["path"].endswith(f"?token={TOKENS[0]}&channel=ops")
    manifest = json.loads((out.run_dir / "manifest.json").read_text())
    assert manifest["notification"]["delivered"] is True
    assert manifest["params"]["notify_webhook"] == redact_url(url) == f"http://127.0.0.1:{hook.server.server_port}/…"
    assert (out.run_dir / "params.yaml").is_file() and (out.run_dir / "02_gate.ipynb").is_file()
    assert _leaks(out.run_dir) == []


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_a_succeeded_run_archives_no_token(tmp_path, nbdir):
    with Webhook() as hook:
        out = run_runbook(_params(tmp_path, ["load"], notify_webhook=_secret_url(hook)), notebooks_dir=nbdir, echo=None)
    assert out.status == "succeeded" and hook.received == []
    assert len(list(out.run_dir.rglob("*"))) >= 5  # params, manifest, notebook, html, summary ...
    assert _leaks(out.run_dir) == []


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_a_resumed_run_notifies_only_through_the_environment(tmp_path, nbdir, monkeypatch):
    """The archive holds the redacted URL; a resume reads the archive, so the token comes from $RUNBOOK_NOTIFY_WEBHOOK."""
    monkeypatch.delenv("RUNBOOK_NOTIFY_WEBHOOK", raising=False)
    write_stage_notebook(nbdir / "02_gate.ipynb", "raise RuntimeError('bucket unreachable')")
    with Webhook() as hook:
        out = run_runbook(_params(tmp_path, ["load", "gate"], notify_webhook=_secret_url(hook)), notebooks_dir=nbdir,
                          echo=None)
        assert out.status == "failed" and len(hook.received) == 1
        again = resume_run(out.run_dir, notebooks_dir=nbdir, echo=None)  # no env: nobody to tell, nothing leaks
        assert again.status == "failed" and len(hook.received) == 1
        monkeypatch.setenv("RUNBOOK_NOTIFY_WEBHOOK", _secret_url(hook))
        third = resume_run(out.run_dir, notebooks_dir=nbdir, echo=None)
        assert third.status == "failed" and len(hook.received) == 2
    assert _leaks(out.run_dir) == []


@pytest.mark.parametrize("url, kept", [
    ("https://hooks.example.com/x?token=abc", "https://hooks.example.com/…"),
    ("https://u:p@hooks.example.com:8443/", "https://hooks.example.com:8443/…"),
    ("https://hooks.example.com", "https://hooks.example.com"),
])
def test_public_params_redact_webhook_urls(tmp_path, url, kept):
    assert _params(tmp_path, ["load"], notify_webhook=url).public_dict()["notify_webhook"] == kept


def test_a_failed_archive_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    """A full disk while rewriting the manifest: the previous manifest stays whole, no zero-byte temp file."""
    import os as _os

    from nbcore.archive import write_json_atomic

    target = tmp_path / "manifest.json"
    write_json_atomic(target, {"status": "running"})

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(target, {"status": "succeeded"})
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
