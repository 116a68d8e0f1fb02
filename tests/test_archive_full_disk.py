"""A full disk under the archive: no ``running`` manifest, no temp file, no half-written page.

The disk is simulated: every byte the archive writes (``nbcore.archive._write_bytes``, the one
place archive files are written) and every notebook papermill saves go through ``FullDisk``,
which, from a chosen write on, refuses anything past the space used at that moment (writing
what fits, then raising ``ENOSPC``, as a real disk does). Freed space (the archive's reserve)
is space again. The assertions are on the files the run leaves behind.
"""
from __future__ import annotations

import errno
import json
import os
import re
from collections import Counter
from pathlib import Path

import duckdb
import papermill.iorw
import pytest
from click.testing import CliRunner

from nbcore import archive as archive_mod
from nbcore.archive import ArchiveWriteError, RESERVE, write_atomic
from nbcore.cli import main
from nbcore.params import build_params
from nbcore.runbook import resume_run, run_runbook

from runbook_helpers import write_stage_notebook

STAGES = ["load", "gate", "derive"]


class FullDisk:
    """The archive folder's disk; full from the ``n``-th write of ``name`` on."""

    def __init__(self, root: Path, name: str, n: int = 1):
        self.root, self.trigger, self.seen, self.capacity = root, (name, n), Counter(), None

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def room(self, path: str, size: int) -> int | None:
        """None if ``size`` bytes fit, else how many do."""
        name = re.sub(r"^\.(.+?)\.[^.]+\.tmp$", r"\1", Path(path).name)  # a temp file counts as its target
        self.seen[name] += 1
        if self.capacity is None and (name, self.seen[name]) == self.trigger:
            self.capacity = self.used()
        if self.capacity is None or self.used() + size <= self.capacity:
            return None
        return max(0, self.capacity - self.used())

    def install(self, monkeypatch) -> "FullDisk":
        real = archive_mod._write_bytes

        def write_bytes(f, data: bytes) -> None:
            room = self.room(os.readlink(f"/proc/self/fd/{f.fileno()}"), len(data))
            if room is not None:
                real(f, data[:room])
                f.flush()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(f, data)

        def papermill_write(handler, buf: str, path: str) -> None:  # papermill saves its output notebook in place
            room = self.room(path, len(buf.encode()))
            with open(path, "w", encoding="utf-8") as f:
                f.write(buf if room is None else buf.encode()[:room].decode(errors="ignore"))
            if room is not None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(archive_mod, "_write_bytes", write_bytes)
        monkeypatch.setattr(papermill.iorw.LocalHandler, "write", papermill_write)
        return self


def _params(tmp_path: Path):
    if not (tmp_path / "wh.duckdb").exists():  # the warehouse the runs point at exists (a resume never creates one)
        duckdb.connect(str(tmp_path / "wh.duckdb")).close()
    data = {"run_name": "disk", "duckdb_path": str(tmp_path / "wh.duckdb"), "bucket": str(tmp_path),
            "archive_dir": str(tmp_path / "runs"), "stages": STAGES}
    return build_params(data, "test", tmp_path)


@pytest.fixture
def nbdir(tmp_path):
    d = tmp_path / "notebooks"
    for n in ("01_load", "02_gate", "03_derive"):
        write_stage_notebook(d / f"{n}.ipynb", "print('x' * 2000)")
    return d


def _left_behind(run_dir: Path) -> dict:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    return {
        "temp": [p.name for p in files if p.name.endswith(".tmp")],
        "empty": [p.name for p in files if p.stat().st_size == 0],
        "reserve": (run_dir / RESERVE).exists(),
        "half_html": [p.name for p in files if p.suffix == ".html" and not p.read_text().rstrip().endswith("</html>")],
        "half_notebooks": [p.name for p in files if p.suffix == ".ipynb" and not _is_json(p)],
    }


def _is_json(p: Path) -> bool:
    try:
        json.loads(p.read_text())
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("name, n, stopped_at", [
    ("01_load.html", 1, "load"),      # the HTML of an executed notebook
    ("02_gate.ipynb", 1, "gate"),     # papermill saving the executed notebook
    ("manifest.json", 4, None),       # a manifest between two steps
])
@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_a_full_disk_stops_the_run_and_leaves_only_whole_files(tmp_path, nbdir, monkeypatch, name, n, stopped_at):
    params = _params(tmp_path)
    disk = FullDisk(Path(params.archive_dir), name, n).install(monkeypatch)
    try:
        outcome = run_runbook(params, notebooks_dir=nbdir, echo=None)
        run_dir, reason = outcome.run_dir, outcome.reason
        assert outcome.status == "failed" and outcome.exit_code == 1
    except ArchiveWriteError as e:  # the driver re-raises after recording the end (the CLI prints it, exit 1)
        (run_dir,), reason = list(Path(params.archive_dir).iterdir()), str(e)
    assert disk.capacity is not None, "the disk filled up"

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["exit_code"] == 1
    if stopped_at:
        assert manifest["stopped_at"] == stopped_at
    for text in (reason, manifest["reason"]):
        assert "cannot write the run archive file" in text and "No space left on device" in text
        assert f"then `runbook resume {run_dir.name} --archive-dir {run_dir.parent}`" in text
        assert str(run_dir) in text  # the path of the file that could not be written
    assert _left_behind(run_dir) == {"temp": [], "empty": [], "reserve": False, "half_html": [], "half_notebooks": []}


    # space freed: the resume the message printed finishes the run in the same archive
    monkeypatch.undo()
    resumed = resume_run(run_dir.name, archive_dir=run_dir.parent, notebooks_dir=nbdir, echo=None)
    assert resumed.status == "succeeded" and resumed.run_dir == run_dir
    assert _left_behind(run_dir) == {"temp": [], "empty": [], "reserve": False, "half_html": [], "half_notebooks": []}


@pytest.mark.slow  # papermill kernels (stand-in notebooks)
def test_the_cli_prints_the_path_and_what_to_do(tmp_path, nbdir, monkeypatch):
    params = _params(tmp_path)
    FullDisk(Path(params.archive_dir), "manifest.json", 4).install(monkeypatch)
    monkeypatch.setattr("nbcore.runbook.NOTEBOOKS_DIR", nbdir)
    (tmp_path / "p.yaml").write_text(json.dumps({**params.public_dict(), "stages": STAGES, "create_warehouse": True}, default=str))
    res = CliRunner().invoke(main, ["run", "--params", str(tmp_path / "p.yaml")])
    assert res.exit_code == 1, res.output
    assert "cannot write the run archive file" in res.output and "Free space on the archive's disk" in res.output
    assert "Traceback" not in res.output


def test_write_atomic_keeps_the_old_file_whole_and_removes_its_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "run" / "summary.md"
    write_atomic(target, "old summary\n")
    FullDisk(tmp_path, "summary.md").install(monkeypatch)  # full from the next write on
    with pytest.raises(ArchiveWriteError) as e:
        write_atomic(target, "new summary " * 1000)
    assert target.read_text() == "old summary\n" and sorted(p.name for p in target.parent.iterdir()) == ["summary.md"]
    assert str(target) in str(e.value) and "No space left on device" in str(e.value)


def test_a_run_that_cannot_even_start_its_archive_leaves_no_folder(tmp_path, monkeypatch):
    params = _params(tmp_path)
    Path(params.archive_dir).mkdir()
    FullDisk(Path(params.archive_dir), "params.yaml").install(monkeypatch)
    with pytest.raises(ArchiveWriteError) as e:
        run_runbook(params, notebooks_dir=tmp_path, echo=None)
    assert "params.yaml" in str(e.value) and "No space left on device" in str(e.value) and "start the run again" in str(e.value)
    assert list(Path(params.archive_dir).iterdir()) == []
