"""The DuckDB backend: BigQuery SQL in, atomic range replacement, checksums."""
from datetime import date

import pandas as pd
import pytest

from nbcore.warehouse import WarehouseError
from nbcore.warehouse.duckdb import DuckDBWarehouse

T = "nba_reference.processor_run_history"


def _rows(day: date, n: int, run: str = "r1") -> pd.DataFrame:
    return pd.DataFrame({"run_id": run, "stage": "test", "phase": "2", "processor": "p", "data_date": day,
                         "attempt": list(range(1, n + 1)), "success": True, "rows_written": 1})


@pytest.fixture
def wh(tmp_path):
    w = DuckDBWarehouse(tmp_path / "w.duckdb")
    w.ensure_schema()
    w.ensure_schema()  # idempotent
    yield w
    w.close()


def test_bigquery_sql_with_query_parameters(wh):
    wh.append(T, _rows(date(2024, 1, 2), 3))
    out = wh.query(
        "SELECT COUNT(*) AS n FROM nba_reference.processor_run_history "
        "WHERE data_date BETWEEN DATE_SUB(@d, INTERVAL 1 DAY) AND @d AND attempt IN UNNEST(@attempts)",
        {"d": date(2024, 1, 2), "attempts": [1, 3]},
    )
    assert out.n.iloc[0] == 2
    with pytest.raises(WarehouseError, match="missing query parameters"):
        wh.query("SELECT @x AS x", {})


def test_replace_range_replaces_only_the_range(wh):
    wh.append(T, _rows(date(2024, 1, 1), 2))
    wh.append(T, _rows(date(2024, 1, 2), 2))
    n = wh.replace_range(T, date(2024, 1, 2), date(2024, 1, 2), frame=_rows(date(2024, 1, 2), 5, "r2"))
    assert n == 5
    got = wh.query("SELECT data_date, COUNT(*) AS n FROM nba_reference.processor_run_history GROUP BY 1 ORDER BY 1")
    assert got.n.tolist() == [2, 5]


def test_rows_outside_the_range_are_refused_and_nothing_changes(wh):
    wh.append(T, _rows(date(2024, 1, 2), 2))
    before = wh.checksum(T)
    with pytest.raises(WarehouseError, match="outside the range"):
        wh.replace_range(T, date(2024, 1, 2), date(2024, 1, 2), frame=_rows(date(2024, 1, 3), 1))
    assert wh.checksum(T) == before


def test_failure_inside_a_transaction_leaves_nothing_half_written(wh):
    wh.append(T, _rows(date(2024, 1, 2), 2))
    before = wh.checksum(T)
    with pytest.raises(RuntimeError):
        with wh.transaction():
            wh.replace_range(T, date(2024, 1, 2), date(2024, 1, 2), frame=_rows(date(2024, 1, 2), 7, "r2"))
            raise RuntimeError("crash mid-chunk")
    assert wh.checksum(T) == before
    assert wh.row_count(T) == 2


def test_checksum_ignores_row_order_and_audit_columns(wh, tmp_path):
    other = DuckDBWarehouse(tmp_path / "o.duckdb")
    other.ensure_schema()
    rows = _rows(date(2024, 1, 2), 4)
    wh.append(T, rows)
    other.append(T, rows.iloc[::-1].assign(run_id="another-run"))
    assert wh.checksum(T) == other.checksum(T)
    other.append(T, _rows(date(2024, 1, 3), 1))
    assert wh.checksum(T) != other.checksum(T)
    other.close()


def test_replace_range_from_a_select(wh):
    wh.append(T, _rows(date(2024, 1, 2), 3))
    n = wh.replace_range(
        T, date(2024, 1, 5), date(2024, 1, 5),
        sql="SELECT run_id, stage, phase, processor, DATE_ADD(data_date, INTERVAL 3 DAY) AS data_date, attempt, success, "
            "error, rows_written, started_at, finished_at, seconds FROM nba_reference.processor_run_history WHERE attempt <= @k",
        params={"k": 2},
    )
    assert n == 2
