"""Predict reads its inputs once per stage, never inside a chunk's transaction (on BigQuery a read
there is a job of its own and opens a session), and its change-only write against the rows read
beforehand is ``Warehouse.write_frame_changes``'s: same rows written, same counts, same dates."""
from __future__ import annotations

import shutil
from collections import Counter
from datetime import date

import pandas as pd
import pytest

from nbcore.predict import run_predict
from nbcore.predict import stage as predict_stage
from nbcore.predict.changes import CurrentRows, write_changes
from nbcore.warehouse.duckdb import DuckDBWarehouse
from predict_fixtures import open_fresh, synthetic_league, tiny_params

PRED = "nba_predictions.player_prop_predictions"
PREFETCH = ["predict/current_rows", "predict/matchup_adjusted", "predict/moving_average", "predict/targets",
            "predict/training_rows"]


@pytest.fixture
def league(tmp_path):
    params = tiny_params(tmp_path, chunk_days=10, refit_days=7, train_window_days=60)
    wh = open_fresh(params)
    dates = synthetic_league(wh)
    yield params, wh, dates
    wh.close()


def spy_reads(wh, monkeypatch) -> list[tuple[str, bool]]:
    """Every query the warehouse runs from now on: (label, inside a transaction)."""
    seen: list[tuple[str, bool]] = []
    real = wh.query

    def query(sql, params=None, *, label=""):
        seen.append((label or sql.split()[0], wh._in_tx > 0))
        return real(sql, params, label=label)

    monkeypatch.setattr(wh, "query", query)
    return seen


def test_each_input_is_read_once_per_stage_and_no_chunk_reads(league, monkeypatch):
    params, wh, dates = league
    seen = spy_reads(wh, monkeypatch)
    result = run_predict(params, wh=wh, progress=False)
    assert len(result.chunks) == 7 and result.status == "succeeded"
    assert [label for label, in_tx in seen if in_tx] == []  # a chunk's transaction is writes only
    predict_reads = Counter(label for label, _ in seen if label.startswith("predict/"))
    assert predict_reads == Counter(PREFETCH)  # its dates come from the plan (nbcore.targets), not a read of its own
    assert result.rows == len(dates) * 24 * len(predict_stage.SYSTEM_IDS)


def test_a_run_with_nothing_to_do_reads_no_input(league, monkeypatch):
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    seen = spy_reads(wh, monkeypatch)
    again = run_predict(params, wh=wh, progress=False)
    assert again.dates == [] and again.rows == 0
    assert [label for label, _ in seen if label in PREFETCH] == []


def test_freezing_reads_no_current_rows_and_writes_only_the_missing(league, monkeypatch):
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    d = dates[33]
    wh.execute(f"DELETE FROM {PRED} WHERE game_date = @d AND player_lookup = 'p03'", {"d": d})
    seen = spy_reads(wh, monkeypatch)
    result = run_predict(params.model_copy(update={"freeze_predictions": True}), wh=wh, progress=False)
    assert result.dates == [d] and result.rows == len(predict_stage.SYSTEM_IDS)
    labels = [label for label, _ in seen]
    assert "predict/current_rows" not in labels and labels.count("predict/targets") == 1
    assert [label for label, in_tx in seen if in_tx] == []


def test_a_restatement_moves_changed_at_only_where_rows_changed(league, monkeypatch):
    """The changed dates come from the rows read before the stage: a date whose rows all come
    out the same keeps its lineage ``changed_at``; the altered ones move to this run's stamp."""
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    altered = [dates[12], dates[47]]
    wh.execute(f"UPDATE {PRED} SET predicted_points = predicted_points + 1 WHERE game_date = @d "
               "AND player_lookup = 'p05' AND system_id = 'matchup_adjusted'", {"d": altered[0]})
    extra = wh.query(f"SELECT * FROM {PRED} WHERE game_date = @d AND player_lookup = 'p06' "
                     "AND system_id = 'ensemble'", {"d": altered[1]})
    extra["system_id"] = "retired_system"  # a row the pipeline no longer produces: it must go
    wh.append(PRED, extra)
    seen = spy_reads(wh, monkeypatch)
    result = run_predict(params.model_copy(update={"repredict": True}), wh=wh, progress=False)
    assert (result.rows, result.rows_deleted[PRED]) == (1, 2)  # p05 rewritten; p05's bad row and the stray gone
    # inside the chunks only lineage's own read of the unchanged dates' previous versions
    assert {label for label, in_tx in seen if in_tx} <= {"lineage/latest_versions"}
    lin = wh.query("SELECT data_date, computed_at, changed_at FROM nba_reference.partition_lineage "
                   "WHERE table_name = @t AND run_id = @r", {"t": PRED, "r": result.run_id})
    lin["data_date"] = pd.to_datetime(lin.data_date).dt.date
    moved = set(lin.loc[lin.changed_at == lin.computed_at, "data_date"])
    assert moved == set(altered)
    assert set(lin.data_date) == set(dates)


def test_write_changes_matches_write_frame_changes(league, tmp_path):
    """The same new frame written both ways on two copies of one warehouse: same counts, same
    changed dates, same table afterwards."""
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    chunk = dates[20:24]
    cur = wh.query(f"SELECT * FROM {PRED} WHERE game_date IN UNNEST(@d)", {"d": chunk})
    cur["game_date"] = pd.to_datetime(cur.game_date).dt.date
    new = cur[~((cur.game_date == chunk[0]) & (cur.player_lookup == "p07"))].copy()  # 4 rows gone
    bump = (new.game_date == chunk[2]) & (new.player_lookup == "p09")
    new.loc[bump, "confidence"] = new.loc[bump, "confidence"] + 0.01  # 4 rows changed
    added = new[(new.game_date == chunk[3]) & (new.player_lookup == "p10")].copy()
    added["system_id"] = "new_system"  # 1 row new
    new = pd.concat([new, added.iloc[:1]], ignore_index=True)

    wh.close()
    shutil.copy(params.duckdb_path, tmp_path / "copy.duckdb")
    a, b = DuckDBWarehouse(params.duckdb_path), DuckDBWarehouse(str(tmp_path / "copy.duckdb"))
    try:
        with a.transaction():
            by_base = a.write_frame_changes(PRED, chunk, new)
        current = CurrentRows.read(b, dates)  # read for more dates than the write: sliced by date
        with b.transaction():
            by_predict = write_changes(b, PRED, chunk, new, current)
        assert (by_predict.inserted, by_predict.deleted) == (by_base.inserted, by_base.deleted) == (5, 8)
        assert by_predict.changed_dates == by_base.changed_dates == {chunk[0], chunk[2], chunk[3]}
        assert a.checksum(PRED) == b.checksum(PRED)
        assert not write_changes(b, PRED, chunk, new, CurrentRows.read(b, chunk)).changed  # now equal: no write
    finally:
        a.close()
        b.close()


def test_current_rows_keep_only_date_signature_and_key(league):
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False, dates=dates[:3])
    current = CurrentRows.read(wh, dates)
    assert list(current.rows.columns) == ["day", "sig", "key"] and len(current.rows) == 3 * 24 * 4
    assert len(current.on([dates[1]])) == 24 * 4 and current.on([date(1999, 1, 1)]).empty
    assert current.rows.key.str.count(r"\|").eq(2).all()  # game_id|player_lookup|system_id


def test_a_failed_read_stops_the_stage_at_its_first_chunk(league, monkeypatch):
    """The inputs are read before the first chunk; a read that fails fails that chunk as a read
    inside it did: the error recorded for its dates, nothing written, later chunks not run."""
    params, wh, dates = league

    def unreadable(*a, **k):
        raise RuntimeError("feature store unreadable")

    monkeypatch.setattr(predict_stage, "read_inputs", unreadable)
    with pytest.raises(predict_stage.PredictError, match="feature store unreadable") as err:
        run_predict(params, wh=wh, progress=False)
    statuses = [c.status for c in err.value.result.chunks]
    assert statuses[0] == "failed" and set(statuses[1:]) == {"not_run"} and len(statuses) == 7
    assert wh.row_count(PRED) == 0
    hist = wh.query("SELECT data_date, success, error FROM nba_reference.processor_run_history "
                    "WHERE processor = 'player_prop_predictions'")
    first = predict_stage.chunk_dates(dates, params.chunk_days)[0]
    assert sorted(pd.to_datetime(hist.data_date).dt.date) == first and not hist.success.any()
    assert hist.error.str.contains("feature store unreadable").all()
