"""Predict and grade on the small demo: the before state has exactly the injected holes, the
stages close them, re-running changes nothing, no look-ahead, and the better systems win."""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from derive_fixtures import dates_present, fresh_copy
from nbcore import grade
from nbcore.predict import SYSTEM_IDS, run_predict
from nbcore.validate import run_validate
from nbcore.warehouse.duckdb import DuckDBWarehouse

PRED, ACC = "nba_predictions.player_prop_predictions", "nba_predictions.prediction_accuracy"


def _final_dates(league) -> set[date]:
    s = league.schedule
    return set(s[s.game_status == "final"].game_date)


def test_before_state_has_exactly_the_injected_holes(small_demo):
    params, built = small_demo
    wh = DuckDBWarehouse(params.duckdb_path, read_only=True)
    try:
        v = run_validate(params, wh=wh, progress=False)
        comp = grade.grading_completeness(wh, params).set_index("season_year")
    finally:
        wh.close()
    assert set(v.missing_dates(PRED)) == built.holes.missing_dates(PRED)
    assert set(v.missing_dates(ACC)) == built.holes.missing_dates(ACC)
    assert comp.loc[2024, "graded"] == 0 and comp.loc[2024, "eligible"] > 0  # the ungraded season
    assert comp.loc[2023, "completeness_pct"] == 100.0  # its playoff hole has no predictions yet


@pytest.fixture(scope="module")
def backfilled(derived, tmp_path_factory):  # noqa: F811
    """``derived`` (phases 2-4 complete) after predict and grade: the end of a backfill."""
    params, built, _ = derived
    p, wh = fresh_copy(params, tmp_path_factory.mktemp("predicted"))
    before = {t: dates_present(wh, t) for t in (PRED, ACC)}
    predicted = run_predict(p, wh=wh, progress=False)
    graded = grade.run_grade(p, wh=wh, progress=False)
    wh.close()
    return p, built, before, predicted, graded


@pytest.mark.slow  # predicts and grades the whole small demo (the module's fixture)
def test_predict_and_grade_close_every_hole(backfilled):
    params, built, before, predicted, graded = backfilled
    assert predicted.status == "succeeded" and graded.status == "succeeded"
    holes = built.holes
    # the holes, plus every date whose model learned from a date derive filled (stale: restated)
    assert set(holes.downstream_missing) <= set(predicted.dates)
    assert set(predicted.dates) - set(holes.downstream_missing) <= set(predicted.stale_dates)
    assert predicted.stale_dates and not predicted.frozen_stale_dates
    assert set(holes.downstream_missing) | set(holes.ungraded) <= set(graded.dates)
    assert set(predicted.rows_by_system) == set(SYSTEM_IDS)
    wh = DuckDBWarehouse(params.duckdb_path, read_only=True)
    try:
        v = run_validate(params, wh=wh, progress=False)
        comp = grade.grading_completeness(wh, params)
        hist = wh.query("SELECT processor, data_date, success FROM nba_reference.processor_run_history "
                        "WHERE run_id = @r", {"r": predicted.run_id})
    finally:
        wh.close()
    for table in (PRED, ACC):
        assert v.missing_dates(table) == [] and v.partial_dates(table) == {}, table
    assert (comp.completeness_pct == 100.0).all() and (comp.ungraded == 0).all()
    assert (comp.voided > 0).all()  # benched players' predictions are voided, not misses
    assert hist.success.all() and sorted(pd.to_datetime(hist.data_date).dt.date) == predicted.dates
    s = graded.summary()
    assert s["graded"] > 0 and s["voided"] > 0 and set(s["metrics_by_system"]) == set(SYSTEM_IDS)


@pytest.mark.slow  # predicts and grades the whole small demo (the module's fixture)
def test_rerunning_changes_nothing(backfilled, tmp_path):
    params, *_ = backfilled
    p, wh = fresh_copy(params, tmp_path)
    try:
        before = wh.checksums([PRED, ACC])
        again_p = run_predict(p, wh=wh, progress=False)
        again_g = grade.run_grade(p, wh=wh, progress=False)
        assert again_p.dates == [] and again_g.dates == []
        assert wh.checksums([PRED, ACC]) == before
    finally:
        wh.close()


@pytest.mark.slow  # predicts and grades the whole small demo (the module's fixture)
def test_predictions_for_a_date_ignore_everything_on_and_after_it(backfilled, tmp_path):
    params, built, *_ = backfilled
    day = date(2024, 11, 5)
    p, wh = fresh_copy(params, tmp_path, repredict=True)
    try:
        run_predict(p, wh=wh, progress=False, dates=[day])
        cols = "game_id, player_lookup, system_id, predicted_points, points_line, edge, recommendation, confidence, " \
               "training_window_start, training_window_end"
        sql = f"SELECT {cols} FROM {PRED} WHERE game_date = @d ORDER BY game_id, player_lookup, system_id"
        first = wh.query(sql, {"d": day})
        # the future happens differently: scores, box scores, later features and factors
        wh.execute("UPDATE nba_analytics.player_game_summary SET points = points * 2 + 3 WHERE game_date >= @d", {"d": day})
        wh.execute("DELETE FROM nba_raw.bdl_player_boxscores WHERE game_date >= @d", {"d": day})
        wh.execute("UPDATE nba_raw.nbac_schedule SET game_status = 'scheduled' WHERE game_date > @d", {"d": day})
        for t in ("ml_feature_store_v2", "player_composite_factors", "player_daily_cache"):
            wh.execute(f"DELETE FROM nba_precompute.{t} WHERE game_date > @d AND player_lookup < 'm'", {"d": day})
        wh.execute("UPDATE nba_precompute.ml_feature_store_v2 SET points_avg_last_10 = 50, points_line = 0.5 "
                   "WHERE game_date > @d", {"d": day})
        run_predict(p, wh=wh, progress=False, dates=[day])
        pd.testing.assert_frame_equal(first, wh.query(sql, {"d": day}))
        assert first.training_window_end.notna().any()
        assert (pd.to_datetime(first.training_window_end.dropna()) < pd.Timestamp(day)).all()
    finally:
        wh.close()


@pytest.mark.slow  # predicts and grades the whole small demo (the module's fixture)
def test_matchup_and_regression_beat_the_moving_average(backfilled):
    params, *_ = backfilled
    wh = DuckDBWarehouse(params.duckdb_path, read_only=True)
    try:
        m = grade.accuracy_metrics(wh, params, by=["system_id"]).set_index("system_id")
    finally:
        wh.close()
    assert m.loc["matchup_adjusted", "mae"] < m.loc["moving_average", "mae"]
    assert m.loc["regression", "mae"] < m.loc["moving_average", "mae"] - 0.1
    assert m.loc["regression", "hit_rate_low"] > 0.5  # better than a coin flip against the line
