"""Predict on a synthetic league: walk-forward training, no look-ahead, chunking, re-runs,
stop-on-error and atomic chunks."""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from nbcore.predict import PredictError, regression, run_predict
from nbcore.predict import stage as predict_stage
from predict_fixtures import open_fresh, synthetic_league, tiny_params

PRED = "nba_predictions.player_prop_predictions"


@pytest.fixture
def league(tmp_path):
    params = tiny_params(tmp_path, chunk_days=10, refit_days=7, train_window_days=60)
    wh = open_fresh(params)
    dates = synthetic_league(wh)
    yield params, wh, dates
    wh.close()


def _preds(wh, day=None) -> pd.DataFrame:
    sql = f"SELECT * EXCEPT (run_id, created_at) FROM {PRED}" + (" WHERE game_date = @d" if day else "")
    frame = wh.query(sql, {"d": day} if day else None)
    return frame.sort_values(["game_id", "player_lookup", "system_id"]).reset_index(drop=True)


def test_regression_trains_only_before_the_refit_date(league):
    params, wh, dates = league
    result = run_predict(params, wh=wh, progress=False)
    assert result.dates == dates and result.status == "succeeded"
    p = _preds(wh)
    reg = p[p.system_id == "regression"]
    fitted = reg[reg.training_window_end.notna()]
    assert len(fitted) > 0.5 * len(reg), "the regression should be fitted for most of the league"
    gd, end = pd.to_datetime(fitted.game_date), pd.to_datetime(fitted.training_window_end)
    assert (end < gd).all()
    refits = fitted.game_date.map(lambda d: regression.refit_date(d, params.refit_days))
    assert (pd.to_datetime(fitted.training_window_end) < pd.to_datetime(refits)).all()
    assert (pd.to_datetime(fitted.training_window_start) >= pd.to_datetime(refits) - pd.Timedelta(days=60)).all()
    # at most one model per refit interval
    models = result.model_table()
    assert models.refit_date.is_unique
    assert models[models.fitted].n_train.min() >= regression.MIN_TRAIN_ROWS
    # unfitted early dates fall back to the moving average
    early = reg[reg.training_window_end.isna()].merge(
        p[p.system_id == "moving_average"], on=["game_id", "player_lookup"], suffixes=("", "_ma"))
    assert len(early) and (early.predicted_points == early.predicted_points_ma).all()


def test_regression_beats_the_moving_average_here(league):
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    err = wh.query(f"""
        SELECT p.system_id, AVG(ABS(p.predicted_points - g.points)) AS mae
        FROM {PRED} p JOIN nba_analytics.player_game_summary g USING (game_id, player_lookup)
        WHERE p.training_window_end IS NOT NULL OR p.system_id IN ('moving_average', 'matchup_adjusted')
        GROUP BY 1""").set_index("system_id").mae
    assert err["regression"] < err["moving_average"]


@pytest.mark.slow
def test_no_look_ahead(league, tmp_path):
    """Predictions for D are unchanged when every input on and after D (but D's own pre-game
    feature rows) is altered: actual points, later features, later games."""
    params, wh, dates = league
    d = dates[45]
    run_predict(params, wh=wh, progress=False)
    before = _preds(wh, d)
    wh.execute("UPDATE nba_analytics.player_game_summary SET points = points * 3 + 7 WHERE game_date >= @d", {"d": d})
    wh.execute("DELETE FROM nba_analytics.player_game_summary WHERE game_date >= @d AND player_lookup < 'p05'", {"d": d})
    wh.execute("UPDATE nba_precompute.ml_feature_store_v2 SET points_avg_last_10 = 99, points_line = 0.5 "
               "WHERE game_date > @d", {"d": d})
    wh.execute("DELETE FROM nba_precompute.ml_feature_store_v2 WHERE game_date > @d AND player_lookup > 'p20'", {"d": d})
    after_params = params.model_copy(update={"repredict": True})
    run_predict(after_params, wh=wh, progress=False)
    pd.testing.assert_frame_equal(before, _preds(wh, d))
    # ...while altering the past does change them (the test can fail)
    wh.execute("UPDATE nba_analytics.player_game_summary SET points = points + 5 WHERE game_date < @d", {"d": d})
    run_predict(after_params, wh=wh, progress=False)
    changed = _preds(wh, d)
    assert not changed[changed.system_id == "regression"].predicted_points.equals(
        before[before.system_id == "regression"].predicted_points)


@pytest.mark.slow
def test_chunking_does_not_change_predictions(league, tmp_path):
    params, wh, dates = league
    some = dates[20:42]  # three refit intervals, fitted models throughout
    run_predict(params.model_copy(update={"chunk_days": 1}), wh=wh, progress=False, dates=some)
    by_day = wh.checksum(PRED)
    run_predict(params.model_copy(update={"chunk_days": 400, "repredict": True}), wh=wh, progress=False, dates=some)
    assert wh.checksum(PRED) == by_day
    assert wh.query(f"SELECT COUNT(*) AS n FROM {PRED} WHERE training_window_end IS NOT NULL").n.iloc[0] > 0


def test_rerun_changes_nothing(league):
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    first = wh.checksum(PRED)
    again = run_predict(params, wh=wh, progress=False)
    assert again.dates == [] and again.rows == 0
    assert wh.checksum(PRED) == first
    run_predict(params.model_copy(update={"repredict": True}), wh=wh, progress=False)
    assert wh.checksum(PRED) == first


def test_freeze_predictions_predicts_only_missing_player_games(league):
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    d = dates[30]
    wh.execute(f"UPDATE {PRED} SET predicted_points = -1 WHERE game_date = @d AND player_lookup = 'p01'", {"d": d})
    wh.execute(f"DELETE FROM {PRED} WHERE game_date = @d AND player_lookup = 'p02' AND system_id = 'ensemble'", {"d": d})
    frozen = params.model_copy(update={"freeze_predictions": True})
    result = run_predict(frozen, wh=wh, progress=False)
    assert result.dates == [d] and result.player_games == 1  # p02 only: p01 has all its systems
    p = _preds(wh, d)
    assert (p[p.player_lookup == "p01"].predicted_points == -1).all()  # issued predictions left alone
    assert set(p[p.player_lookup == "p02"].system_id) == set(predict_stage.SYSTEM_IDS)


def test_restating_a_date_writes_only_the_rows_that_change(league):
    params, wh, dates = league
    run_predict(params, wh=wh, progress=False)
    d = dates[31]
    clean = _preds(wh, d)
    wh.execute(f"UPDATE {PRED} SET predicted_points = -1 WHERE game_date = @d AND player_lookup = 'p01' "
               "AND system_id = 'regression'", {"d": d})
    wh.execute(f"DELETE FROM {PRED} WHERE game_date = @d AND player_lookup = 'p02' AND system_id = 'ensemble'", {"d": d})
    result = run_predict(params, wh=wh, progress=False)
    assert result.dates == [d]
    assert result.rows == 2 and sum(result.rows_deleted.values()) == 1  # p02's missing row, p01's wrong one
    pd.testing.assert_frame_equal(_preds(wh, d), clean)  # back to what the pipeline computes


def test_stop_on_error_leaves_no_partial_chunk(league, monkeypatch):
    params, wh, dates = league
    real = predict_stage._write_chunk
    calls = {"n": 0}

    def flaky(wh_, params_, chunk, frame, *a):
        calls["n"] += 1
        if calls["n"] == 3:  # crash inside the transaction, after the rows were replaced
            with wh_.transaction():
                wh_.replace_range(predict_stage.TABLE, chunk[0], chunk[-1], frame=frame)
                raise RuntimeError("injected crash")
        return real(wh_, params_, chunk, frame, *a)

    monkeypatch.setattr(predict_stage, "_write_chunk", flaky)
    with pytest.raises(PredictError, match="injected crash") as err:
        run_predict(params, wh=wh, progress=False)
    done = err.value.result
    statuses = [c.status for c in done.chunks]
    assert done.status == "failed" and statuses[:3] == ["succeeded", "succeeded", "failed"]
    assert set(statuses[3:]) <= {"not_run"}  # every later chunk is listed, none ran
    have = set(pd.to_datetime(wh.query(f"SELECT DISTINCT game_date FROM {PRED}").game_date).dt.date)
    first_two = {d for c in predict_stage.chunk_dates(dates, params.chunk_days)[:2] for d in c}
    assert have == first_two  # the failing chunk left nothing, nothing after it ran
    hist = wh.query("SELECT data_date, success, error FROM nba_reference.processor_run_history "
                    "WHERE processor = 'player_prop_predictions'")
    failed = hist[~hist.success]
    assert len(failed) == len(predict_stage.chunk_dates(dates, params.chunk_days)[2])
    assert failed.error.str.contains("injected crash").all()


def test_dates_argument_limits_the_scope(league):
    params, wh, dates = league
    some = dates[5:9]
    result = run_predict(params, wh=wh, progress=False, dates=some)
    assert result.dates == some
    have = sorted(pd.to_datetime(wh.query(f"SELECT DISTINCT game_date FROM {PRED}").game_date).dt.date)
    assert have == some
