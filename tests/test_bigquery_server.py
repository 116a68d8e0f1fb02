"""The loopback BigQuery server, driven by the real google-cloud-bigquery client.

These pin down what the server refuses (as BigQuery would), its byte accounting, paging,
uploads and transactions, so the backend tests built on it mean something.
"""
from __future__ import annotations

import io
import json
import warnings
from datetime import date, datetime, timezone

import pandas as pd
import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery as bq

from bqserver import BigQueryLoopback, MiB

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

PROJECT = "loop-proj"


class RawParam:
    """A query parameter sent exactly as given (the client would refuse to build a malformed one)."""

    def __init__(self, resource: dict):
        self.resource = resource
        self.name = resource.get("name")

    def to_api_repr(self) -> dict:
        return self.resource


@pytest.fixture(scope="module")
def server():
    with BigQueryLoopback(min_bytes_per_table=0, page_rows=7) as srv:
        client = srv.client(PROJECT)
        client.create_dataset(f"{PROJECT}.ds")
        games = bq.Table(f"{PROJECT}.ds.games", schema=[
            bq.SchemaField("game_date", "DATE"), bq.SchemaField("game_id", "STRING", mode="REQUIRED"),
            bq.SchemaField("points", "INT64"), bq.SchemaField("note", "STRING"),
        ])
        games.time_partitioning = bq.TimePartitioning(field="game_date")
        games.require_partition_filter = True
        games.clustering_fields = ["game_id"]
        client.create_table(games)
        rows = [{"game_date": f"2024-01-{d:02d}", "game_id": f"g{d:02d}{i}", "points": d * 10 + i,
                 "note": "x" * i if i else None} for d in range(1, 11) for i in range(5)]
        client.load_table_from_json(rows, f"{PROJECT}.ds.games",
                                    job_config=bq.LoadJobConfig(schema=games.schema)).result()
        srv.client_ = client
        yield srv


def _q(client, sql, params=(), **cfg):
    return client.query(sql, job_config=bq.QueryJobConfig(query_parameters=list(params), **cfg))


def test_query_parameters_of_each_type_round_trip(server):
    c = server.client_
    ts = datetime(2024, 3, 25, 19, 30, 5, 123456, tzinfo=timezone.utc)
    params = [
        bq.ScalarQueryParameter("i", "INT64", 7), bq.ScalarQueryParameter("f", "FLOAT64", 2.5),
        bq.ScalarQueryParameter("b", "BOOL", True), bq.ScalarQueryParameter("s", "STRING", "Luka Dončić"),
        bq.ScalarQueryParameter("d", "DATE", date(2024, 3, 25)), bq.ScalarQueryParameter("ts", "TIMESTAMP", ts),
        bq.ScalarQueryParameter("n", "INT64", None), bq.ArrayQueryParameter("ai", "INT64", [3, 1, 2]),
        bq.ArrayQueryParameter("ad", "DATE", [date(2024, 1, 2), date(2024, 1, 3)]),
    ]
    row = list(_q(c, "SELECT @i AS i, @f AS f, @b AS b, @s AS s, @d AS d, @ts AS ts, @n AS n, "
                     "ARRAY_LENGTH(@ai) AS ai", params).result())[0]
    assert (row.i, row.f, row.b, row.s, row.d, row.ts, row.n, row.ai) == (7, 2.5, True, "Luka Dončić", date(2024, 3, 25), ts, None, 3)
    # arrays as filters, on a table that requires a partition filter
    n = list(_q(c, "SELECT COUNT(*) AS n FROM ds.games WHERE game_date IN UNNEST(@ad) AND points IN UNNEST(@pts)",
                [params[-1], bq.ArrayQueryParameter("pts", "INT64", [20, 21, 30, 99])]).result())[0].n
    assert n == 3


@pytest.mark.parametrize("resource, message", [
    ({"name": "d", "parameterType": {"type": "DATE"}, "parameterValue": {"value": "2024-13-45"}}, "Invalid DATE value"),
    ({"name": "d", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "12x"}}, "Invalid INT64 value"),
    ({"name": "d", "parameterType": {"type": "NOPE"}, "parameterValue": {"value": "1"}}, "Unsupported query parameter type"),
    ({"name": "d", "parameterType": {"type": "ARRAY", "arrayType": {"type": "INT64"}},
      "parameterValue": {"arrayValues": [{"value": "1"}, {"value": None}]}}, "cannot have a NULL element"),
    ({"parameterType": {"type": "DATE"}, "parameterValue": {"value": "2024-01-01"}}, "Positional query parameters"),
])
def test_malformed_parameters_are_rejected(server, resource, message):
    with pytest.raises(gexc.BadRequest, match=message):
        _q(server.client_, "SELECT 1 AS x", [RawParam(resource)]).result()


def test_a_missing_parameter_is_rejected(server):
    with pytest.raises(gexc.BadRequest, match="Query parameter 'start_date' not found"):
        _q(server.client_, "SELECT COUNT(*) FROM ds.games WHERE game_date >= @start_date").result()


def test_unknown_dataset_and_table(server):
    with pytest.raises(gexc.NotFound, match=f"Dataset {PROJECT}:nope"):
        _q(server.client_, "SELECT 1 FROM nope.games").result()
    with pytest.raises(gexc.NotFound, match=f"Table {PROJECT}:ds.nope"):
        _q(server.client_, "SELECT 1 FROM ds.nope").result()
    with pytest.raises(gexc.NotFound):
        server.client_.get_table(f"{PROJECT}.other.games")


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) FROM ds.games",
    "SELECT COUNT(*) FROM ds.games WHERE points > 3",
    "SELECT COUNT(*) FROM ds.games g JOIN ds.games h ON g.game_date = h.game_date WHERE h.game_date = @d",
    "SELECT COUNT(*) FROM ds.games WHERE game_date = @d OR points > 3",
    "DELETE FROM ds.games WHERE points = 1",
])
def test_partition_filter_is_required(server, sql):
    with pytest.raises(gexc.BadRequest, match="without a filter over column\\(s\\) 'game_date'"):
        _q(server.client_, sql, [bq.ScalarQueryParameter("d", "DATE", date(2024, 1, 1))]).result()


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) FROM ds.games WHERE game_date = @d",
    "SELECT COUNT(*) FROM ds.games g WHERE g.game_date BETWEEN @d AND DATE_ADD(@d, INTERVAL 3 DAY) AND points > 1",
    "SELECT COUNT(*) FROM ds.games g JOIN ds.games h ON g.game_id = h.game_id AND h.game_date = @d WHERE g.game_date = @d",
    "WITH x AS (SELECT * FROM ds.games WHERE game_date >= @d) SELECT COUNT(*) FROM x",
])
def test_a_partition_filter_satisfies_it(server, sql):
    assert list(_q(server.client_, sql, [bq.ScalarQueryParameter("d", "DATE", date(2024, 1, 1))]).result())


def test_bytes_follow_columns_and_partitions(server):
    c = server.client_
    d = [bq.ScalarQueryParameter("d", "DATE", date(2024, 1, 3))]
    one_day = _q(c, "SELECT points FROM ds.games WHERE game_date = @d", d)
    one_day.result()
    assert one_day.total_bytes_processed == 5 * (8 + 8)  # 5 rows x (points + the game_date it filters on)
    all_days = _q(c, "SELECT points FROM ds.games WHERE game_date >= @d0",
                  [bq.ScalarQueryParameter("d0", "DATE", date(2024, 1, 1))])
    all_days.result()
    assert all_days.total_bytes_processed == 50 * 16
    # strings: 2 + length for non-NULL values (per day: "", x, xx, xxx, xxxx -> NULL, 3, 4, 5, 6)
    notes = _q(c, "SELECT note FROM ds.games WHERE game_date = @d", d)
    notes.result()
    assert notes.total_bytes_processed == 3 + 4 + 5 + 6 + 5 * 8
    dry = _q(c, "SELECT points FROM ds.games WHERE game_date = @d", d, dry_run=True)
    assert dry.total_bytes_processed == 80 and dry.state == "DONE"
    # the date column alone is what completeness checks read: 8 bytes a row
    dates = _q(c, "SELECT game_date, COUNT(*) FROM ds.games WHERE game_date >= @d0 GROUP BY game_date",
               [bq.ScalarQueryParameter("d0", "DATE", date(2024, 1, 1))])
    dates.result()
    assert dates.total_bytes_processed == 50 * 8


def test_bytes_over_the_cap_fail_before_running():
    with BigQueryLoopback() as srv:  # BigQuery's 10 MiB minimum per table referenced
        c = srv.client(PROJECT)
        c.create_dataset(f"{PROJECT}.ds")
        c.query("CREATE TABLE ds.t AS SELECT 1 AS x").result()
        job = _q(c, "SELECT x FROM ds.t", maximum_bytes_billed=5 * MiB)
        with pytest.raises(gexc.GoogleAPICallError) as e:
            job.result()
        assert e.value.errors[0]["reason"] == "bytesBilledLimitExceeded"
        assert f"Query exceeded limit for bytes billed: {5 * MiB}. {10 * MiB} or higher required" in e.value.message
        ok = _q(c, "SELECT x FROM ds.t", maximum_bytes_billed=10 * MiB)
        assert [r.x for r in ok.result()] == [1] and ok.total_bytes_billed == 10 * MiB
        assert _q(c, "SELECT 1 AS y", maximum_bytes_billed=1).result().total_rows == 1  # no table, no bytes


def test_results_are_paged(server):
    job = _q(server.client_, "SELECT game_id, points FROM ds.games WHERE game_date >= @d ORDER BY points",
             [bq.ScalarQueryParameter("d", "DATE", date(2024, 1, 1))])
    rows = job.result()
    assert rows.total_rows == 50
    pages = list(rows.pages)
    assert len(pages) == 8  # 7 rows a page on this server
    frame = job.to_arrow(create_bqstorage_client=False).to_pandas()
    assert frame.points.tolist() == sorted(frame.points.tolist()) and len(frame) == 50


def test_multipart_and_resumable_loads(server):
    c = server.client_
    schema = [bq.SchemaField("k", "STRING"), bq.SchemaField("v", "FLOAT64"), bq.SchemaField("t", "TIMESTAMP")]
    frame = pd.DataFrame({"k": ["a", "b", None], "v": [1.5, None, -2.0],
                          "t": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:30", None])})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = c.load_table_from_dataframe(frame, f"{PROJECT}.ds.loaded", job_config=bq.LoadJobConfig(schema=schema))
    assert job.result().output_rows == 3
    body = "\n".join(json.dumps(r) for r in [{"k": "c", "v": 3.25, "t": "2024-01-03 00:00:00"}]).encode()
    job = c.load_table_from_file(io.BytesIO(body), f"{PROJECT}.ds.loaded",  # no size: a resumable upload
                                 job_config=bq.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON"))
    assert job.result().output_rows == 1
    got = c.list_rows(f"{PROJECT}.ds.loaded").to_arrow(create_bqstorage_client=False).to_pandas()
    got = got.sort_values("k", na_position="last")
    assert got.k.tolist()[:3] == ["a", "b", "c"] and got.v.tolist()[0] == 1.5
    assert got.t.iloc[0] == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    with pytest.raises(gexc.BadRequest, match="Cannot add fields"):
        c.load_table_from_json([{"k": "d", "extra": 1}], f"{PROJECT}.ds.loaded",
                               job_config=bq.LoadJobConfig(schema=schema + [bq.SchemaField("extra", "INT64")])).result()


def _count(c, day=date(2024, 1, 2)) -> int:
    return list(_q(c, "SELECT COUNT(*) AS n FROM ds.games WHERE game_date = @d",
                   [bq.ScalarQueryParameter("d", "DATE", day)]).result())[0].n


def test_a_failing_script_transaction_changes_nothing(server):
    c = server.client_
    before = _count(c)
    script = """BEGIN TRANSACTION;
    DELETE FROM ds.games WHERE game_date = @d;
    INSERT INTO ds.games (game_date, game_id, points) SELECT @d, 'new', CAST('not a number' AS INT64);
    COMMIT TRANSACTION;"""
    with pytest.raises(gexc.BadRequest):
        _q(c, script, [bq.ScalarQueryParameter("d", "DATE", date(2024, 1, 2))]).result()
    assert _count(c) == before == 5


def test_a_session_transaction_spans_jobs(server):
    c = server.client_
    d = [bq.ScalarQueryParameter("d", "DATE", date(2024, 1, 4))]
    begin = _q(c, "BEGIN TRANSACTION", create_session=True)
    begin.result()
    sid = begin.session_info.session_id
    prop = [bq.ConnectionProperty("session_id", sid)]
    _q(c, "DELETE FROM ds.games WHERE game_date = @d", d, connection_properties=prop).result()
    inside = list(_q(c, "SELECT COUNT(*) AS n FROM ds.games WHERE game_date = @d", d, connection_properties=prop).result())
    assert inside[0].n == 0 and _count(c, date(2024, 1, 4)) == 5  # others still see the committed rows
    _q(c, "ROLLBACK TRANSACTION", connection_properties=prop).result()
    _q(c, "CALL BQ.ABORT_SESSION()", connection_properties=prop).result()
    assert _count(c, date(2024, 1, 4)) == 5
    with pytest.raises(gexc.BadRequest, match="expired or does not exist"):
        _q(c, "SELECT 1", connection_properties=prop).result()


def test_dataset_and_table_calls(server):
    c = server.client_
    c.create_dataset(f"{PROJECT}.scratch")
    with pytest.raises(gexc.Conflict):
        c.create_dataset(f"{PROJECT}.scratch")
    c.query("CREATE TABLE scratch.t AS SELECT 1 AS x").result()
    assert [t.table_id for t in c.list_tables(f"{PROJECT}.scratch")] == ["t"]
    t = c.get_table(f"{PROJECT}.scratch.t")
    assert t.num_rows == 1 and t.schema[0].field_type == "INTEGER"
    games = c.get_table(f"{PROJECT}.ds.games")
    assert games.time_partitioning.field == "game_date" and games.require_partition_filter
    assert games.clustering_fields == ["game_id"] and games.num_rows == 50
    with pytest.raises(gexc.BadRequest, match="still in use"):
        c.delete_dataset(f"{PROJECT}.scratch")
    c.delete_dataset(f"{PROJECT}.scratch", delete_contents=True)
    with pytest.raises(gexc.NotFound):
        c.get_dataset(f"{PROJECT}.scratch")
