"""What BigQuery refuses, the loopback server refuses: Google's analyzer (ZetaSQL) sees every
statement, and a DATE column compared with a TIMESTAMP parameter fails as on BigQuery.
And the backend never sends such a parameter by accident: a list mixing dates and
datetimes becomes a TIMESTAMP array of datetimes."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from bqserver import BigQueryLoopback
from bqserver.server import zetasql_checker
from nbcore.warehouse.bigquery import to_query_parameter

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

BOX = "loopback-project.raw.box"


@pytest.fixture(scope="module")
def server():
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        c = srv.client()
        c.create_dataset("raw")
        c.create_table(bigquery.Table(BOX, schema=[
            bigquery.SchemaField("game_date", "DATE"), bigquery.SchemaField("points", "INT64")]))
        c.query(f"INSERT INTO `{BOX}` (game_date, points) VALUES (DATE '2024-01-02', 7), (DATE '2024-01-03', 9)").result()
        yield srv


def _rows(client, sql, *params):
    return [tuple(r.values()) for r in client.query(sql, job_config=bigquery.QueryJobConfig(
        query_parameters=list(params))).result()]


def test_a_list_mixing_dates_and_datetimes_is_a_timestamp_array_of_datetimes():
    p = to_query_parameter("days", [date(2024, 1, 2), datetime(2024, 1, 3, 12, 30)])
    assert p.array_type == "TIMESTAMP"
    assert p.values[0] == datetime(2024, 1, 2, tzinfo=timezone.utc)
    json.dumps(p.to_api_repr())  # what the client sends: this raised "date is not JSON serializable"


def test_the_mixed_array_reaches_the_server_as_timestamps(server):
    p = to_query_parameter("days", [date(2024, 1, 2), datetime(2024, 1, 3, 12, 30)])
    got = _rows(server.client(), "SELECT d FROM UNNEST(@days) AS d ORDER BY d", p)
    assert [r[0] for r in got] == [datetime(2024, 1, 2, tzinfo=timezone.utc),
                                   datetime(2024, 1, 3, 12, 30, tzinfo=timezone.utc)]


@pytest.mark.parametrize("where", [
    "game_date >= @t", "@t <= game_date", "game_date BETWEEN @t AND @t", "game_date IN UNNEST(@ts)",
])
def test_a_timestamp_parameter_against_a_date_column_is_refused(server, where):
    t = bigquery.ScalarQueryParameter("t", "TIMESTAMP", datetime(2024, 1, 2))
    ts = bigquery.ArrayQueryParameter("ts", "TIMESTAMP", [datetime(2024, 1, 2)])
    with pytest.raises(gexc.BadRequest, match=r"No matching signature for operator .* (DATE, TIMESTAMP|TIMESTAMP, DATE)"):
        _rows(server.client(), f"SELECT points FROM `{BOX}` WHERE {where}", t, ts)


def test_a_date_parameter_against_a_date_column_runs(server):
    d = bigquery.ScalarQueryParameter("d", "DATE", date(2024, 1, 3))
    assert _rows(server.client(), f"SELECT points FROM `{BOX}` WHERE game_date >= @d", d) == [(9,)]


def test_zetasql_rejects_what_duckdb_would_run(server):
    """``strlen`` is a DuckDB function, not a BigQuery one: DuckDB would answer 3."""
    before = len(zetasql_checker().rejections)
    with pytest.raises(gexc.BadRequest, match=r"ZetaSQL rejected the query: Function not found: strlen.*"
                                              r"statement: SELECT strlen"):
        _rows(server.client(), "SELECT strlen('abc') AS n")
    assert zetasql_checker().rejections[before]["statement"] == "SELECT strlen('abc') AS n"


def test_zetasql_sees_scripts_statement_by_statement_with_parameter_types(server):
    n0 = zetasql_checker().statements
    d = bigquery.ScalarQueryParameter("d", "DATE", date(2024, 1, 2))
    script = (f"BEGIN TRANSACTION;\nDELETE FROM `{BOX}` WHERE game_date = @d;\n"
              f"INSERT INTO `{BOX}` (game_date, points) VALUES (@d, 7);\nCOMMIT TRANSACTION;")
    server.client().query(script, job_config=bigquery.QueryJobConfig(query_parameters=[d])).result()
    assert zetasql_checker().statements - n0 == 4
    assert _rows(server.client(), f"SELECT COUNT(*) FROM `{BOX}` WHERE game_date = @d", d) == [(1,)]
