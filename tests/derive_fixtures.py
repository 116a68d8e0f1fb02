"""Warehouses for the derive tests, all from the session's small demo (``conftest.small_demo``).

* ``raw_complete``: the before state with every raw row loaded (what load + gate leave), the
  phase 3/4 holes still open;
* ``derived``: ``raw_complete`` after a strict derive (every hole closed);
* ``rederived``: ``derived`` with every date derived again, so rows after a former hole are
  computed with it (a derive fills holes; it does not refresh the dates after them).

Both are files built once per module; ``fresh_copy`` gives a test its own writable copy.
"""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from conftest import small_params
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


@pytest.fixture(scope="module")
def raw_complete(small_demo, tmp_path_factory):
    params, built = small_demo
    p, wh = fresh_copy(params, tmp_path_factory.mktemp("raw_complete"))
    fill_raw(wh, built.league)
    wh.close()
    return p, built


@pytest.fixture(scope="module")
def derived(raw_complete, tmp_path_factory):
    params, built = raw_complete
    p, wh = fresh_copy(params, tmp_path_factory.mktemp("derived"))
    result = run_derive(p, wh=wh, progress=False)
    wh.close()
    return p, built, result


@pytest.fixture(scope="module")
def rederived(derived, tmp_path_factory):
    params, built, _ = derived
    p, wh = fresh_copy(params, tmp_path_factory.mktemp("rederived"), backfill_mode=True, chunk_days=400)
    final = sorted(d for d in built.league.game_dates)
    result = run_derive(p, wh=wh, progress=False, dates=final)
    assert result.ok, result.error
    wh.close()
    return p, built
