"""One writer per warehouse *file* (issue 24): a second run reaching the same DuckDB file through a
symlink or a hard link is refused (exit 4, the holder named) while the first runs, and a command
refused by the lock (load, gate) leaves no archive folder behind."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nbcore.lock import lock_path

from runbook_helpers import copy_demo


def _alias_params(params_file: Path, folder: Path, duckdb_path: Path) -> Path:
    """A second params file, identical but for the name it gives the warehouse file."""
    data = yaml.safe_load(params_file.read_text())
    data["duckdb_path"] = str(duckdb_path)
    out = folder / f"params-{duckdb_path.stem}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nbcore.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # `runbook run` and `gate` subprocesses on the small demo
def test_a_symlink_or_hard_link_to_a_locked_warehouse_is_refused(small_demo, tmp_path):
    params, params_file = copy_demo(small_demo[0], tmp_path / "real", stages=["validate", "load", "gate"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "via-symlink.duckdb").symlink_to(params.duckdb_path)
    os.link(params.duckdb_path, other / "via-hardlink.duckdb")
    symlinked = _alias_params(params_file, other, other / "via-symlink.duckdb")
    hardlinked = _alias_params(params_file, other, other / "via-hardlink.duckdb")
    archive = Path(params.archive_dir)

    first = _cli("run", "--params", str(params_file), "--run-id", "first-run")
    deadline = time.time() + 120
    while not lock_path(params).exists():
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.02)
    # while the first run holds the warehouse: runs, a load and a gate through both other names
    others = {
        "run-symlink": _cli("run", "--params", str(symlinked), "--run-id", "second-symlink"),
        "run-hardlink": _cli("run", "--params", str(hardlinked), "--run-id", "second-hardlink"),
        "load-hardlink": _cli("load", "--params", str(hardlinked), "--no-progress"),
        "gate-symlink": _cli("gate", "--params", str(symlinked)),
    }
    results = {name: (p.wait(timeout=180), p.stderr.read()) for name, p in others.items()}
    first_still_running = first.poll() is None
    out1, err1 = first.communicate(timeout=600)

    assert first_still_running, "the first run ended before the others were refused; the test proves nothing"
    assert first.returncode == 0, err1
    for name, (code, err) in results.items():
        assert code == 4, (name, err)
        assert "first-run" in err and "locked" in err, (name, err)  # the holder is named
        assert "Traceback" not in err, (name, err)
    assert "via-hardlink" in results["run-hardlink"][1]  # the refusal says which name it was given
    # nothing was written by the refused commands: no archive, no lock file next to the other names
    assert sorted(p.name for p in archive.iterdir()) == ["first-run"]
    assert sorted(p.name for p in other.iterdir()) == sorted(
        ["via-symlink.duckdb", "via-hardlink.duckdb", symlinked.name, hardlinked.name])
    assert not lock_path(params).exists()

    # the lock went with the first run: the hard link's name now takes it (and refuses nothing)
    gate = subprocess.run([sys.executable, "-m", "nbcore.cli", "gate", "--params", str(hardlinked)],
                          capture_output=True, text=True, timeout=300)
    assert gate.returncode in (0, 3), gate.stderr
    assert not (other / "via-hardlink.duckdb.runbook-lock").exists()
