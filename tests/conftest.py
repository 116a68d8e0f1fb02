"""Shared fixtures: a small demo league built once into a temp folder, and the shared-build cache.

Tests that write to a warehouse copy the session's DuckDB file first (``demo_copy``), so
every test starts from the same before state and none depends on another's writes.

Building the small demo (and the derived warehouses of ``derive_fixtures``) is the costliest
setup of the suite. ``shared_build`` builds each once per *code version* into a folder every
pytest process of the machine shares (pytest-xdist workers of one run, and later runs of the
same code), under a file lock; each session then works on its own copy, so nothing a test does
can leak into the cache. The key hashes every file of ``nbcore`` (code, SQL, schema) and the
versions of the libraries that compute values, so any change rebuilds.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import pickle
import shutil
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pytest

from nbcore.demo.build import build_demo
from nbcore.params import RunParams, build_params

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
WAIVERS = ROOT / "params" / "waivers.example.yaml"


def small_params(root: Path, **extra) -> RunParams:
    data = {
        "run_name": "test",
        "duckdb_path": str(root / "warehouse.duckdb"),
        "bucket": str(root / "bucket"),
        "archive_dir": str(root / "runs"),
        "seasons": [2023, 2024],
        "demo": {"scale": "small", "seed": 7},
        # the demo league's prop-line gaps (nbcore.demo.quirks) are waived, as in params/demo.yaml
        "waivers": str(WAIVERS),
    }
    data.update(extra)
    return build_params(data, "test", root)


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of everything a built warehouse depends on: nbcore's files, the waivers the small
    demo uses, this file and derive_fixtures.py, and the versions of the computing libraries."""
    import duckdb
    import numpy
    import pandas
    import sqlglot

    h = hashlib.sha256()
    files = sorted(p for p in (ROOT / "nbcore").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in [*files, WAIVERS, TESTS / "conftest.py", TESTS / "derive_fixtures.py"]:
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(f"{duckdb.__version__} {numpy.__version__} {pandas.__version__} {sqlglot.__version__}".encode())
    return h.hexdigest()[:16]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _prune(folder: Path, name: str, older_than_s: float = 6 * 3600) -> None:
    """Forget builds of other code versions untouched for hours (every edit makes a new version)."""
    now = time.time()
    for old in folder.glob(f"runbook-cache-{name}-*"):
        if old.is_dir() and now - old.stat().st_mtime > older_than_s:
            shutil.rmtree(old, ignore_errors=True)


def shared_build(tmp_path_factory, name: str, build: Callable[[Path], Any]) -> tuple[Path, Any]:
    """``build(folder)`` once per code version, machine-wide; returns this session's private copy
    of the folder and what ``build`` returned (pickled: it must not hold the folder's paths, or
    the caller relocates them). ``RUNBOOK_TEST_CACHE=0`` builds privately, as before."""
    mine = tmp_path_factory.mktemp(name)
    if os.environ.get("RUNBOOK_TEST_CACHE", "1") == "0":
        return mine, build(mine)
    cache = tmp_path_factory.getbasetemp().parent / f"runbook-cache-{name}-{code_version()}"
    done = cache / "done.pickle"
    with _locked(cache.with_suffix(".lock")):
        if not done.is_file():
            _prune(cache.parent, name)
            shutil.rmtree(cache, ignore_errors=True)
            (cache / "data").mkdir(parents=True)
            meta = build(cache / "data")
            done.write_bytes(pickle.dumps(meta))
        os.utime(cache)  # in use: not pruned
        shutil.copytree(cache / "data", mine, dirs_exist_ok=True)
    return mine, pickle.loads(done.read_bytes())


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """(params, DemoBuild) of a small demo league in its before state. Treat as read-only."""

    def build(folder: Path):
        built = build_demo(small_params(folder), progress=False)
        return dataclasses.replace(built, bucket=None, warehouse=None)

    root, built = shared_build(tmp_path_factory, "small_demo", build)
    params = small_params(root)
    return params, dataclasses.replace(built, bucket=Path(params.bucket), warehouse=str(params.duckdb_path))


@pytest.fixture
def demo_copy(small_demo, tmp_path):
    """A private copy of the small demo (warehouse + bucket) that a test may write to."""
    params, built = small_demo
    shutil.copy(params.duckdb_path, tmp_path / "warehouse.duckdb")
    shutil.copytree(params.bucket, tmp_path / "bucket")
    return small_params(tmp_path), built


@pytest.fixture(scope="session")
def loaded_demo(small_demo, tmp_path_factory):
    """(folder, DemoBuild): the small demo after ``run_load`` (raw complete but for the waived prop
    gaps, the transient bucket fault used up), built once. Copy it before writing (``loaded``)."""
    from nbcore.load import run_load

    params, built = small_demo

    def build(folder: Path):
        shutil.copy(params.duckdb_path, folder / "warehouse.duckdb")
        shutil.copytree(params.bucket, folder / "bucket")
        assert run_load(small_params(folder), progress=False).ok

    folder, _ = shared_build(tmp_path_factory, "loaded_demo", build)
    return folder, built


@pytest.fixture
def loaded(loaded_demo, tmp_path):
    """A private copy of the small demo after load, that a test may write to."""
    folder, built = loaded_demo
    shutil.copy(folder / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    shutil.copytree(folder / "bucket", tmp_path / "bucket")
    return small_params(tmp_path), built

# the derive tests' warehouses (built once per session, shared by test_derive, test_derive_values,
# test_predict_grade_demo): see derive_fixtures.py
from derive_fixtures import derived, raw_complete, rederived  # noqa: E402,F401


# -- what ZetaSQL analyzed (issue 14: "the note says how many statements and how long") --------
# Every loopback server of a test process shares one checker; each process (an xdist worker, or
# pytest itself) writes its counts at the end, and the summary adds them up.
_ZETA_DIR_ENV = "RUNBOOK_ZETASQL_STATS_DIR"


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        folder = Path(config.rootpath) / ".pytest_cache" / "zetasql-stats"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[_ZETA_DIR_ENV] = str(folder)


def pytest_sessionfinish(session):
    from bqserver import server as bqs

    checker, folder = bqs._CHECKER, os.environ.get(_ZETA_DIR_ENV)
    if checker is None or not folder:
        return
    stats = {"statements": checker.statements, "seconds": round(checker.seconds, 1),
             "rejected": len(checker.rejections)}
    (Path(folder) / f"{os.getpid()}.json").write_text(__import__("json").dumps(stats))


def pytest_terminal_summary(terminalreporter, config):
    import json

    folder = os.environ.get(_ZETA_DIR_ENV)
    files = sorted(Path(folder).glob("*.json")) if folder else []
    if not files:
        return
    parts = [json.loads(f.read_text()) for f in files]
    total = {k: sum(p[k] for p in parts) for k in ("statements", "seconds", "rejected")}
    terminalreporter.write_line(
        f"ZetaSQL analyzed {total['statements']} statements sent to the loopback BigQuery server in "
        f"{total['seconds']:.1f} s ({len(parts)} test processes); rejected: {total['rejected']} "
        f"(tests/test_bigquery_analyzer.py sends such statements on purpose; any other rejection fails its test)")
