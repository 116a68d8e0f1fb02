"""The partition state reads the warehouse with one statement (issue 21: one query per backend
family): ``state/partition_reads`` gives what the four reads it replaced give, on the small demo's
DuckDB, and ZetaSQL (the loopback BigQuery server) accepts it."""
from __future__ import annotations

from datetime import date

import pytest

from nbcore import state
from nbcore.expected import expected_games
from nbcore.params import build_params
from nbcore.warehouse import open_warehouse


def test_one_statement_equals_the_four_reads(small_demo):
    params, _ = small_demo
    with open_warehouse(params, read_only=True) as wh:
        games = expected_games(wh, params).games
        lo, hi = min(games.game_date), max(games.game_date)
        present, unpredicted, attempts, stale = state._reads(wh, params, lo, hi)
        four = wh.query_file("validate/present_games", {"start_date": lo, "end_date": hi})
        assert len(present) == len(four) > 0
        key = ["table_name", "game_id", "row_count"]
        assert (present[key].astype(str).sort_values(key).values == four[key].astype(str).sort_values(key).values).all()
        assert unpredicted == state._unpredicted(wh, lo, hi, params)
        assert attempts == state._latest_attempts(wh, lo, hi) and attempts  # the before state's stages wrote history
        assert stale == state._stale_causes(wh, lo, hi)


@pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL
def test_zetasql_accepts_the_one_statement():
    from bqserver import BigQueryLoopback

    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        params = build_params({"backend": "bigquery", "seasons": [2023], "bigquery": {
            "project": "loop-proj", "dataset_suffix": "_one", "api_endpoint": srv.endpoint}})
        wh = open_warehouse(params, run_id="r", stage="s")
        try:
            present, unpredicted, attempts, stale = state._reads(wh, params, date(2024, 1, 1), date(2024, 1, 31))
        finally:
            wh.close()
    assert present.empty and unpredicted == {} and attempts == {} and stale == {}
