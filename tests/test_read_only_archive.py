"""Words for the disk that failed (issue 24): an archive folder remounted read-only mid-run says
"read-only", not "free space"; a full disk under the DuckDB file is worded as the warehouse's disk,
not the archive's.

Both use a real file system: a small tmpfs mounted for the test (root only; skipped elsewhere),
remounted read-only by the stage itself, or too small for the warehouse's writes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nbcore.archive import ArchiveWriteError
from nbcore.params import build_params
from nbcore.runbook import run_runbook

from runbook_helpers import write_stage_notebook


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "none", str(folder)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()})")


@pytest.fixture
def mount(tmp_path):
    """``mount(name, size)`` -> a fresh tmpfs folder under tmp_path, unmounted after the test."""
    mounted = []

    def make(name: str, size: str = "4m") -> Path:
        folder = tmp_path / name
        _mount_tmpfs(folder, size)
        mounted.append(folder)
        return folder

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.slow  # papermill kernels
def test_archive_remounted_read_only_mid_run_says_read_only(tmp_path, mount):
    archive_dir = mount("archive")
    nbdir = tmp_path / "notebooks"
    # the load stage itself remounts the archive's file system read-only, as an operator's disk did
    write_stage_notebook(nbdir / "01_load.ipynb",
                         f"import subprocess\nsubprocess.run(['mount', '-o', 'remount,ro', {str(archive_dir)!r}], check=True)")
    write_stage_notebook(nbdir / "02_gate.ipynb", "x = 1")
    params = build_params({"run_name": "ro", "duckdb_path": str(tmp_path / "wh.duckdb"), "bucket": str(tmp_path),
                           "archive_dir": str(archive_dir), "stages": ["load", "gate"]}, "test", tmp_path)
    with pytest.raises(ArchiveWriteError) as raised:
        run_runbook(params, notebooks_dir=nbdir, echo=None)
    message = str(raised.value)
    assert "Read-only file system" in message and "read-only" in message.split(". ", 1)[1], message
    assert "free space" not in message.lower(), message
    assert "runbook resume" in message  # still says how to carry on once it is writable
    assert not (tmp_path / "wh.duckdb.runbook-lock").exists()  # the lock went with the run


@pytest.mark.slow  # runs the stage notebooks on the small demo
def test_duckdb_disk_full_is_not_worded_as_the_archive(small_demo, tmp_path, mount):
    from runbook_helpers import copy_demo

    params, _ = copy_demo(small_demo[0], tmp_path / "demo")
    size = Path(params.duckdb_path).stat().st_size
    disk = mount("warehouse-disk", f"{size // 1024 + 512}k")  # the warehouse, and half a megabyte to spare
    shutil.copy(params.duckdb_path, disk / "warehouse.duckdb")
    params = params.model_copy(update={"duckdb_path": disk / "warehouse.duckdb", "stages": ["load", "gate"],
                                       "reload": True})  # reloading every date needs far more than 512 kB
    out = run_runbook(params, echo=None)
    assert (out.status, out.exit_code, out.stopped_at) == ("failed", 1, "load"), out.describe()
    assert "No space left on device" in out.reason and str(disk) in out.reason, out.reason
    assert "archive's disk" not in out.reason and "the run archive was not the problem" in out.reason, out.reason
    assert out.manifest["reason"] == out.reason  # the archive (on a disk with room) says the same
