"""Convergence check: does the warehouse equal what a hole-free pipeline builds from its raw tables?

``rebuild_from_raw`` copies a DuckDB warehouse, empties every phase 3, 4, 5 and 5B table (and
their lineage) in the copy, and rebuilds them from the same raw tables with the real stages,
every date at once. ``rows_differing`` compares the two table by table, audit columns aside,
as a multiset of rows. After a successful backfill the answer must be 0 for every table; the
test suite checks it on the small demo and ``make bench`` reports it (``converge_rows_differing``)
on the full one.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import lineage, profiling, schema
from .params import RunParams
from .warehouse import Warehouse, open_warehouse
from .warehouse.base import row_signatures, value_columns

DERIVED_PHASES = ("3", "4", "5", "5B")


def derived_tables() -> list[str]:
    return [t.fqn for t in schema.all_tables() if t.phase in DERIVED_PHASES]


def rows_differing(a: Warehouse, b: Warehouse, table: str) -> int:
    """Rows of ``table`` in one warehouse and not the other (audit columns aside, duplicates counted)."""
    t = schema.table(table)
    cols = ", ".join(value_columns(t))
    fa = a.query(f"SELECT {cols} FROM {t.fqn}", label=f"read {t.fqn}")
    fb = b.query(f"SELECT {cols} FROM {t.fqn}", label=f"read {t.fqn}")
    ca = row_signatures(t, fa).value_counts()
    cb = row_signatures(t, fb).value_counts()
    diff = ca.sub(cb, fill_value=0)
    return int(diff.abs().sum())


@dataclass
class Rebuild:
    params: RunParams
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)


def rebuild_from_raw(params: RunParams, root: Path, chunk_days: int = 3660) -> Rebuild:
    """A copy of the warehouse of ``params`` under ``root`` with phases 3-5B rebuilt from its raw
    tables alone (backfill mode, every completed date, large chunks)."""
    from .derive import run_derive
    from .derive.checks import Schedule
    from .grade import run_grade
    from .predict import run_predict

    root.mkdir(parents=True, exist_ok=True)
    target = root / "rebuilt.duckdb"
    shutil.copy(params.duckdb_path, target)
    p = params.model_copy(update={"duckdb_path": target, "backfill_mode": True, "chunk_days": chunk_days,
                                  "tables": None, "run_name": "rebuild", "freeze_predictions": False})
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    wh = open_warehouse(p)
    try:
        with wh.transaction():
            for table in derived_tables() + [lineage.TABLE]:
                wh.execute(f"DELETE FROM {table} WHERE TRUE")
        dates = Schedule(wh.query_file("derive/final_games")).dates
        t = time.perf_counter()
        with profiling.stage("derive"):
            run_derive(p, wh=wh, progress=False, dates=dates)
        seconds["derive"] = time.perf_counter() - t
        t = time.perf_counter()
        with profiling.stage("predict"):
            run_predict(p, wh=wh, progress=False, dates=dates)
        seconds["predict"] = time.perf_counter() - t
        t = time.perf_counter()
        with profiling.stage("grade"):
            run_grade(p, wh=wh, progress=False, dates=dates, metrics=False)
        seconds["grade"] = time.perf_counter() - t
    finally:
        wh.close()
    return Rebuild(p, time.perf_counter() - t0, seconds)


def compare(a: RunParams, b: RunParams, tables: list[str] | None = None) -> pd.DataFrame:
    """Per derived table: rows in each warehouse and rows that differ."""
    out = []
    with open_warehouse(a, read_only=True) as wa, open_warehouse(b, read_only=True) as wb:
        for table in tables or derived_tables():
            out.append({"table": table, "rows": wa.row_count(table), "rows_rebuilt": wb.row_count(table),
                        "rows_differing": rows_differing(wa, wb, table)})
    return pd.DataFrame(out)
