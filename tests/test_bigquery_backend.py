"""BigQueryWarehouse through the real google-cloud-bigquery and pandas-gbq clients, against the
loopback server: parameters, atomic writes, partition filters, the bytes cap, dataset suffix
isolation, job labels, and the credentials path never leaving the process."""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from pydantic import SecretStr

from bqserver import BigQueryLoopback, MiB
from nbcore import schema
from nbcore.params import build_params
from nbcore.warehouse import WarehouseError, open_warehouse
from nbcore.warehouse.bigquery import BigQueryWarehouse, BytesBilledLimitError, _credentials
from nbcore.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

PROJECT = "loop-proj"
BOX = "nba_raw.bdl_player_boxscores"
SCHED = "nba_raw.nbac_schedule"
HIST = "nba_reference.processor_run_history"


@pytest.fixture(scope="module")
def server():
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        yield srv


def make_wh(server, suffix: str, **kwargs) -> BigQueryWarehouse:
    params = build_params({"backend": "bigquery", "bigquery": {
        "project": PROJECT, "dataset_suffix": suffix, "api_endpoint": server.endpoint,
        **kwargs.pop("bq", {})}})
    return open_warehouse(params, **kwargs)


@pytest.fixture(scope="module")
def wh(server):
    w = make_wh(server, "_unit", run_id="unit-run", stage="unit")
    yield w
    w.close()


def box_rows(day: date, game: str, n: int, points0: int = 0) -> pd.DataFrame:
    t = schema.table(BOX)
    rows = []
    for i in range(n):
        r = {c: None for c in t.columns}
        r.update(game_id=game, game_date=day, season_year=2023, player_id=i, player_lookup=f"p{i}",
                 player_name=f"Player {i}", team_abbr="BOS", points=points0 + i, minutes="30:00",
                 loaded_at=datetime(2024, 5, 1, 12, 0))
        rows.append(r)
    return pd.DataFrame(rows)


def box_count(wh, start=date(2024, 1, 1), end=date(2024, 12, 31)) -> int:
    return int(wh.query(f"SELECT COUNT(*) AS n FROM {BOX} WHERE game_date BETWEEN @s AND @e", {"s": start, "e": end}).n[0])


def test_tables_are_partitioned_clustered_and_filter_protected(server, wh):
    c = wh.client
    for t in schema.all_tables():
        bt = c.get_table(wh.table_id(t.fqn))
        assert bt.time_partitioning.field == t.date_column, t.fqn
        assert tuple(bt.clustering_fields or ()) == t.cluster_by[:4], t.fqn
        assert bool(bt.require_partition_filter) == t.require_partition_filter, t.fqn
        key_modes = {f.name: f.mode for f in bt.schema if f.name in t.key}
        assert set(key_modes.values()) == {"REQUIRED"}, t.fqn
    created = {t.table_id: t.created for t in c.list_tables(f"{PROJECT}.nba_raw_unit")}
    wh.ensure_schema()  # idempotent: nothing recreated
    assert {t.table_id: t.created for t in c.list_tables(f"{PROJECT}.nba_raw_unit")} == created


def test_parameters_and_result_types_match_duckdb(wh):
    sql = ("SELECT @i AS i, @f AS f, @b AS b, @s AS s, @d AS d, @ts AS ts, ARRAY_LENGTH(@days) AS n_days, "
           "@n AS n, 3 IN UNNEST(@ints) AS has3")
    params = {"i": 42, "f": 0.1, "b": False, "s": "Nikola Jokić", "d": date(2024, 4, 20),
              "ts": datetime(2024, 4, 20, 23, 59, 59), "days": [date(2024, 4, 20), date(2024, 4, 21)], "n": None,
              "ints": (1, 2, 3)}
    got = wh.query(sql, params)
    with DuckDBWarehouse(":memory:") as duck:
        want = duck.query(sql, params)
    # DuckDB binds a Python int as INTEGER, BigQuery as INT64: values equal, widths may differ
    pd.testing.assert_frame_equal(got.drop(columns=["n"]), want.drop(columns=["n"]), check_dtype=False)
    assert [str(t) for t in got.dtypes.drop("n")] == ["int64", "float64", "bool", "str", "datetime64[us]",
                                                      "datetime64[us]", "int64", "bool"]
    assert got.n.isna().all()


def test_replace_range_frame_then_sql_counts_and_idempotence(wh):
    day, src = date(2024, 4, 22), date(2024, 4, 21)
    assert wh.replace_range(BOX, day, day, frame=box_rows(day, "g1", 12)) == 12
    assert wh.replace_range(BOX, day, day, frame=box_rows(day, "g1", 12)) == 12  # replaces, never duplicates
    assert box_count(wh, day, day) == 12
    # a BigQuery SELECT as the source (here: another date's rows, moved); rows outside [start, end] never land
    wh.replace_range(BOX, src, src, frame=box_rows(src, "g0", 7))
    sql = f"SELECT * REPLACE (@day AS game_date, points + 100 AS points) FROM {BOX} WHERE game_date BETWEEN @s AND @e"
    n = wh.replace_range(BOX, day, day, sql=sql, params={"day": day, "s": src, "e": src})
    assert n == 7 and box_count(wh, day, day) == 7 and box_count(wh, src, src) == 7
    assert wh.query(f"SELECT MIN(points) AS m FROM {BOX} WHERE game_date = @d", {"d": day}).m[0] == 100
    assert wh.replace_range(BOX, src, src, sql=sql, params={"day": day, "s": src, "e": src}) == 0
    assert box_count(wh, src, src) == 0  # the range was emptied; the SELECT's rows fell outside it
    # where= narrows the delete: another game on the same date survives
    wh.replace_range(BOX, day, day, frame=box_rows(day, "g2", 3))
    assert box_count(wh, day, day) == 3
    wh.replace_range(BOX, day, day, frame=box_rows(day, "g1", 2), where="game_id IN UNNEST(@games)", params={"games": ["g1"]})
    assert box_count(wh, day, day) == 5
    with pytest.raises(WarehouseError, match="outside the range"):
        wh.replace_range(BOX, day, day, frame=box_rows(date(2024, 4, 23), "g9", 1))


BAD = (f"SELECT * REPLACE (@day AS game_date, CAST(IF(player_id = 7, 'seven', CAST(points AS STRING)) AS INT64) AS points) "
       f"FROM {BOX} WHERE game_date = @src")


def test_a_failed_job_mid_chunk_leaves_no_partial_rows(wh):
    day, other, src = date(2024, 4, 24), date(2024, 4, 25), date(2024, 4, 23)
    wh.replace_range(BOX, day, day, frame=box_rows(day, "g1", 10))
    wh.replace_range(BOX, other, other, frame=box_rows(other, "g2", 10))
    wh.replace_range(BOX, src, src, frame=box_rows(src, "g0", 10))
    bad = {"day": day, "src": src}
    # one script: the INSERT fails (row 7 does not cast) after the DELETE ran; the DELETE is rolled back
    with pytest.raises(WarehouseError, match="failed on BigQuery"):
        wh.replace_range(BOX, day, day, sql=BAD, params=bad)
    assert box_count(wh, day, day) == 10
    # a chunk of several writes in one transaction: a later write fails, the earlier ones vanish
    with pytest.raises(WarehouseError):
        with wh.transaction():
            assert wh.replace_range(BOX, other, other, frame=box_rows(other, "g3", 4)) == 4
            assert box_count(wh, other, other) == 4  # the block sees its own writes
            wh.append(HIST, pd.DataFrame([{"run_id": "r", "stage": "load", "phase": "2", "processor": "p",
                                           "data_date": other, "attempt": 1, "success": True, "rows_written": 4}]))
            wh.replace_range(BOX, day, day, sql=BAD, params=bad)
    assert box_count(wh, other, other) == 10 and box_count(wh, day, day) == 10
    assert wh.query(f"SELECT COUNT(*) AS n FROM {HIST} WHERE data_date = @d", {"d": other}).n[0] == 0
    # and a Python error inside the block rolls back too
    with pytest.raises(RuntimeError):
        with wh.transaction():
            wh.replace_range(BOX, other, other, frame=box_rows(other, "g4", 1))
            raise RuntimeError("the stage crashed")
    assert box_count(wh, other, other) == 10
    staging = [t.table_id for t in wh.client.list_tables(f"{PROJECT}.nba_raw_unit") if t.table_id.startswith("_staging_")]
    assert staging == []


def test_a_transaction_commits_writes_after_begin_and_reads_its_own(wh):
    day, nxt = date(2024, 4, 26), date(2024, 4, 27)
    with wh.transaction():
        n = wh.replace_range(BOX, day, day, frame=box_rows(day, "g1", 6))
        # a later write in the block reads the earlier one (derive's phase 4 reads phase 3 this way)
        m = wh.replace_range(BOX, nxt, nxt, sql=f"SELECT * REPLACE (@nxt AS game_date) FROM {BOX} "
                                                f"WHERE game_date = @d AND player_id < 4", params={"d": day, "nxt": nxt})
        wh.append(HIST, pd.DataFrame([{"run_id": "r2", "stage": "derive", "phase": "3", "processor": "p",
                                       "data_date": day, "attempt": 1, "success": True, "rows_written": m,
                                       "started_at": datetime(2024, 5, 1, 1, 2, 3)}]))
    assert (n, m) == (6, 4) and box_count(wh, day, day) == 6 and box_count(wh, nxt, nxt) == 4
    hist = wh.query(f"SELECT rows_written, started_at FROM {HIST} WHERE data_date = @d", {"d": day})
    assert hist.rows_written.tolist() == [4] and hist.started_at[0] == pd.Timestamp("2024-05-01 01:02:03")


def test_a_chunks_writes_ride_with_its_next_read_and_count_exactly(server):
    """Writes inside a transaction are queued and sent with the transaction's next job: two
    change-only writes (whose SQL use the same parameter names) and the read after them are one
    job, their row counts come from that script, and the COMMIT is the only other job."""
    w = make_wh(server, "_defer", run_id="defer-run", stage="derive")
    d1, d2 = date(2024, 5, 2), date(2024, 5, 3)
    w.replace_range(BOX, d1, d1, frame=box_rows(d1, "g1", 5))
    w.replace_range(BOX, d2, d2, frame=box_rows(d2, "g2", 3))
    copy = f"SELECT * REPLACE (game_date AS game_date) FROM {BOX} WHERE game_date = @day AND player_id < @n"
    before = server.job_counts()["query"]
    with w.transaction():
        a = w.write_changes(BOX, d1, d1, sql=copy, params={"day": d1, "n": 2})  # keeps 2 of 5 rows
        b = w.write_changes(BOX, d2, d2, sql=copy, params={"day": d2, "n": 9})  # keeps all 3: no change
        assert server.job_counts()["query"] == before  # nothing sent yet
        seen = box_count(w, d1, d2)  # this read carries both writes (and the BEGIN)
        assert server.job_counts()["query"] == before + 1
        assert (a.inserted, a.deleted, a.changed) == (0, 3, True) and (b.inserted, b.deleted, b.changed) == (0, 0, False)
    assert seen == 5 and box_count(w, d1, d2) == 5
    assert server.job_counts()["query"] == before + 3  # + COMMIT + the check above
    # a failing queued write fails the job that carries it, names itself, and leaves nothing
    with pytest.raises(WarehouseError, match=r"replace nba_raw.bdl_player_boxscores"):
        with w.transaction():
            w.write_changes(BOX, d2, d2, sql=copy, params={"day": d2, "n": 0})
            w.write_changes(BOX, d1, d1, sql=f"SELECT * REPLACE (CAST('x' AS INT64) AS points) FROM {BOX} "
                                              f"WHERE game_date = @day", params={"day": d1})
    assert box_count(w, d1, d1) == 2 and box_count(w, d2, d2) == 3
    w.close()


def test_parameters_of_queued_statements_are_renamed_outside_strings_and_comments():
    from nbcore.warehouse.bigquery import _rename_parameters

    text = "/* rows of @day ('s) */ SELECT '@day' AS s, `t@day` FROM x WHERE d = @day AND e = @days -- @day"
    assert _rename_parameters(text, {"day": "day__d1"}) == (
        "/* rows of @day ('s) */ SELECT '@day' AS s, `t@day` FROM x WHERE d = @day__d1 AND e = @days -- @day")


def test_partition_filter_is_enforced(wh):
    with pytest.raises(WarehouseError, match="without a filter over column\\(s\\) 'game_date'"):
        wh.query(f"SELECT COUNT(*) AS n FROM {BOX}")
    assert wh.query(f"SELECT COUNT(*) AS n FROM {SCHED}").n[0] >= 0  # the schedule does not require one
    assert wh.row_count(BOX) == box_count(wh)  # read_table/row_count say "every partition" explicitly
    assert len(wh.read_table(BOX)) == box_count(wh)


def test_bytes_cap_names_stage_table_and_bytes():
    with BigQueryLoopback() as srv:  # BigQuery's 10 MiB minimum per table
        day = date(2024, 4, 22)
        make_wh(srv, "_cap").replace_range(BOX, day, day, frame=box_rows(day, "g1", 3))
        capped = make_wh(srv, "_cap", stage="derive", bq={"maximum_bytes_billed": 2 * MiB})
        with pytest.raises(BytesBilledLimitError) as e:
            capped.query(f"SELECT game_id FROM {BOX} WHERE game_date >= @d", {"d": day}, label="derive/player_game_summary")
        msg = str(e.value)
        assert "stage derive" in msg and "derive/player_game_summary" in msg
        assert f"{PROJECT}.nba_raw_cap.bdl_player_boxscores" in msg
        assert f"{10 * MiB:,} bytes" in msg and f"{2 * MiB:,} bytes" in msg
        assert e.value.bytes_billed == 10 * MiB and e.value.cap == 2 * MiB and e.value.stage == "derive"
        assert [j for j in capped.jobs if j["kind"] == "query"][-1]["state"] == "FAILED"
        assert capped.query("SELECT 1 AS x").x[0] == 1  # no table, nothing billed


def test_dry_run_bytes_and_job_records(wh):
    day = date(2024, 4, 28)
    wh.replace_range(BOX, day, day, frame=box_rows(day, "g1", 3))
    sql = f"SELECT game_date, game_id FROM {BOX} WHERE game_date BETWEEN @s AND @e"
    before = len(wh.jobs)
    dry = wh.dry_run_bytes(sql, {"s": day, "e": day})
    wh.query(sql, {"s": day, "e": day}, label="validate/present_games")
    job = wh.jobs[-1]
    assert dry == job["bytes_processed"] > 0
    assert job["stage"] == "unit" and job["labels"]["step"] == "validate_present_games"
    assert [j["kind"] for j in wh.jobs[before:]] == ["dry_run", "query"]
    summary = wh.job_summary()
    assert summary["jobs"] == len([j for j in wh.jobs if j["kind"] != "dry_run"])
    assert summary["bytes_processed"] >= dry and job["job_id"] in summary["job_ids"]


def test_dataset_suffixes_are_isolated(server):
    a, b = make_wh(server, "_iso_a"), make_wh(server, "_iso_b")
    day = date(2024, 4, 29)
    a.replace_range(BOX, day, day, frame=box_rows(day, "g1", 5))
    assert box_count(a, day, day) == 5 and box_count(b, day, day) == 0
    b.drop_all()
    assert box_count(a, day, day) == 5 and box_count(b, day, day) == 0
    datasets = {d.dataset_id for d in a.client.list_datasets()}
    assert {"nba_raw_iso_a", "nba_raw_iso_b", "nba_predictions_iso_a"} <= datasets


def test_every_job_carries_run_and_stage_labels(monkeypatch):
    monkeypatch.setenv("RUNBOOK_RUN_ID", "20240501-120000-Backfill")
    monkeypatch.setenv("RUNBOOK_STAGE", "load")
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        w = make_wh(srv, "_labels")
        day = date(2024, 4, 22)
        w.replace_range(BOX, day, day, frame=box_rows(day, "g1", 3))
        with w.transaction():
            w.replace_range(BOX, day, day, frame=box_rows(day, "g1", 2))
            w.append(HIST, pd.DataFrame([{"run_id": "r", "stage": "load", "phase": "2", "processor": "p",
                                          "data_date": day, "attempt": 1, "success": True}]))
        w.append(HIST, pd.DataFrame([{"run_id": "r", "stage": "load", "phase": "2", "processor": "p",
                                      "data_date": day, "attempt": 2, "success": True}]))
        w.query_file("history/latest_runs", {"processor": "p", "start_date": day, "end_date": day})
        jobs = srv.jobs()
        kinds = {j["configuration"]["jobType"] for j in jobs}
        # replace: load + script; the transaction (small frames ride as query parameters, its writes
        # are deferred to the COMMIT): one BEGIN+DELETE+INSERT+INSERT+COMMIT script, no session;
        # append: load; query: 1 (no separate BEGIN, COMMIT or end-of-session jobs)
        assert kinds == {"QUERY", "LOAD"} and len(jobs) == 5
        for j in jobs:
            labels = j["configuration"].get("labels") or {}
            assert labels.get("app") == "backfill-runbook", j["configuration"]
            assert labels.get("run_id") == "20240501-120000-backfill" and labels.get("stage") == "load"


def test_credentials_path_is_a_secret(tmp_path):
    secret = "/secrets/no-such-key-S3CR3T.json"
    with pytest.raises(WarehouseError) as e:
        _credentials(SecretStr(secret), None)
    assert secret not in str(e.value) and "S3CR3T" not in str(e.value)
    bad = tmp_path / "S3CR3T-key.json"
    bad.write_text("{not json")
    with pytest.raises(WarehouseError) as e:
        _credentials(SecretStr(str(bad)), "https://bigquery.googleapis.com")
    assert "S3CR3T" not in str(e.value)
    params = build_params({"backend": "bigquery", "bigquery": {"project": PROJECT, "credentials_path": secret}})
    assert "S3CR3T" not in repr(params) and "S3CR3T" not in str(params.public_dict())


def test_drop_all_refuses_unsuffixed_datasets_of_a_real_project():
    w = BigQueryWarehouse("prod-project", dataset_suffix="", client=object())
    with pytest.raises(WarehouseError, match="refusing to delete the unsuffixed datasets"):
        w.drop_all()
    ro = BigQueryWarehouse("prod-project", dataset_suffix="_x", client=object(), read_only=True)
    with pytest.raises(WarehouseError, match="read-only"):
        ro.replace_range(BOX, date(2024, 1, 1), date(2024, 1, 1), frame=box_rows(date(2024, 1, 1), "g", 1))


def test_drop_all_on_duckdb_drops_and_recreates(tmp_path):
    with DuckDBWarehouse(tmp_path / "w.duckdb") as duck:
        duck.ensure_schema()
        day = date(2024, 4, 22)
        duck.replace_range(BOX, day, day, frame=box_rows(day, "g1", 3))
        assert duck.row_count(BOX) == 3
        duck.drop_all()
        assert all(duck.table_exists(t.fqn) for t in schema.all_tables()) and duck.row_count(BOX) == 0
