"""Warehouses for the derive tests, all from the session's small demo (``conftest.small_demo``).

* ``raw_complete``: the before state with every raw row loaded (what load + gate leave), the
  phase 3/4 holes still open;
* ``derived``: ``raw_complete`` after a strict derive (every hole closed);
* ``rederived``: ``derived`` with every date derived again, so rows after a former hole are
  computed with it (a derive fills holes; it does not refresh the dates after them).

Each is a file built once per session (and once per code version machine-wide, see
``conftest.shared_build``) and registered in ``conftest.py``, so test_derive, test_derive_values
and test_predict_grade_demo share them; ``fresh_copy`` gives a test its own writable copy.
"""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from conftest import DEMO_DEPS, shared_build, small_params
from nbcore import schema
from nbcore.demo.build import raw_frames
from nbcore.derive import PROCESSORS, run_derive
from nbcore.warehouse.duckdb import DuckDBWarehouse

DERIVED = [p.table.fqn for p in PROCESSORS]
PHASE4 = [p.table.fqn for p in PROCESSORS if p.phase == "4"]


def fill_raw(wh, league) -> None:
    """Load every raw row of the league (closing the raw holes, as load would)."""
    for name, frame in raw_frames(league).items():
        wh.replace_range(name, frame.game_date.min(), frame.game_date.max(), frame=frame)


def fresh_copy(src_params, tmp_path: Path, **extra):
    """A writable copy of a warehouse file; returns (params, open warehouse)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(src_params.duckdb_path, tmp_path / "warehouse.duckdb")
    params = small_params(tmp_path, bucket=str(src_params.bucket), **extra)
    wh = DuckDBWarehouse(params.duckdb_path)
    wh.ensure_schema()
    return params, wh


def rows_on(wh, table: str, day: date) -> pd.DataFrame:
    """A table's rows for one date, audit columns left out, in a stable order."""
    t = schema.table(table)
    cols = [c for c in t.columns if c != "processed_at"]
    df = wh.query(f"SELECT {', '.join(cols)} FROM {t.fqn} WHERE {t.date_column} = @d", {"d": day})
    return df.sort_values(list(t.key)).reset_index(drop=True)


def dates_present(wh, table: str) -> set[date]:
    t = schema.table(table)
    df = wh.query(f"SELECT DISTINCT {t.date_column} AS d FROM {t.fqn}")
    return set(pd.to_datetime(df.d).dt.date)


def _built_once(tmp_path_factory, name: str, src_params, build, deps: tuple[str, ...], **extra):
    """A warehouse made from a copy of ``src_params``' by ``build(params, wh)``, built once per code
    version (``conftest.shared_build``); returns this session's copy, its params and what build returned."""

    def make(folder: Path):
        p, wh = fresh_copy(src_params, folder, **extra)
        try:
            return build(p, wh)
        finally:
            wh.close()

    folder, out = shared_build(tmp_path_factory, name, make, (*DEMO_DEPS, "nbcore.warehouse.duckdb", *deps))
    return small_params(folder, bucket=str(src_params.bucket), **extra), out


@pytest.fixture(scope="session")
def raw_complete(small_demo, tmp_path_factory):
    params, built = small_demo
    p, _ = _built_once(tmp_path_factory, "raw_complete", params, lambda p, wh: fill_raw(wh, built.league), ())
    return p, built


@pytest.fixture(scope="session")
def derived(raw_complete, tmp_path_factory):
    params, built = raw_complete
    p, result = _built_once(tmp_path_factory, "derived", params, lambda p, wh: run_derive(p, wh=wh, progress=False),
                           ("nbcore.derive",))
    return p, built, result


@pytest.fixture(scope="session")
def rederived(derived, tmp_path_factory):
    params, built, _ = derived
    final = sorted(d for d in built.league.game_dates)

    def rederive(p, wh):
        result = run_derive(p, wh=wh, progress=False, dates=final)
        assert result.ok, result.error

    p, _ = _built_once(tmp_path_factory, "rederived", params, rederive, ("nbcore.derive",),
                       backfill_mode=True, chunk_days=400)
    return p, built
