"""Helpers for the runbook tests: demo copies, tiny stand-in notebooks, a loopback webhook."""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import nbformat
import yaml

from nbcore.params import RunParams, build_params


def copy_demo(src: RunParams, root: Path, **extra) -> tuple[RunParams, Path]:
    """A private copy of a built demo (warehouse + bucket) under ``root``; returns params and a params file."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(src.duckdb_path, root / "warehouse.duckdb")
    if not (root / "bucket").exists():
        shutil.copytree(src.bucket, root / "bucket")
    data = {
        "run_name": "test", "duckdb_path": str(root / "warehouse.duckdb"), "bucket": str(root / "bucket"),
        "archive_dir": str(root / "runs"), "seasons": src.seasons, "demo": {"scale": "small", "seed": src.demo.seed},
        "waivers": str(src.waivers) if src.waivers else None,  # the demo's prop gaps are waived
    }
    data.update(extra)
    params = build_params(data, "test", root)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False))
    return params, path


def write_stage_notebook(path: Path, code: str) -> Path:
    """A minimal stage notebook: the standard parameters cell, then ``code``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell("params_file = None\nrun_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i}"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


class Webhook:
    """A loopback HTTP server that records every JSON POST."""

    def __init__(self, status: int = 200):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, "json": json.loads(body)})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/runbook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Webhook":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out.append(int(d.name))
    return out


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and all its descendants (the runbook driver and its kernel), like a crash."""
    victims, frontier = [pid], [pid]
    while frontier:
        frontier = [c for p in frontier for c in children(p)]
        victims += frontier
    for v in reversed(victims):
        try:
            os.kill(v, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return victims
