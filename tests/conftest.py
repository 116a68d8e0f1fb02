"""Shared fixtures: a small demo league built once per test session into a temp folder.

Tests that write to a warehouse copy the session's DuckDB file first (``demo_copy``), so
every test starts from the same before state and none depends on another's writes.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nbcore.demo.build import build_demo
from nbcore.params import RunParams, build_params


def small_params(root: Path, **extra) -> RunParams:
    data = {
        "run_name": "test",
        "duckdb_path": str(root / "warehouse.duckdb"),
        "bucket": str(root / "bucket"),
        "archive_dir": str(root / "runs"),
        "seasons": [2023, 2024],
        "demo": {"scale": "small", "seed": 7},
        # the demo league's prop-line gaps (nbcore.demo.quirks) are waived, as in params/demo.yaml
        "waivers": str(Path(__file__).resolve().parent.parent / "params" / "waivers.example.yaml"),
    }
    data.update(extra)
    return build_params(data, "test", root)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """(params, DemoBuild) of a small demo league in its before state. Treat as read-only."""
    root = tmp_path_factory.mktemp("small_demo")
    params = small_params(root)
    built = build_demo(params, progress=False)
    return params, built


@pytest.fixture
def demo_copy(small_demo, tmp_path):
    """A private copy of the small demo (warehouse + bucket) that a test may write to."""
    params, built = small_demo
    shutil.copy(params.duckdb_path, tmp_path / "warehouse.duckdb")
    shutil.copytree(params.bucket, tmp_path / "bucket")
    return small_params(tmp_path), built
