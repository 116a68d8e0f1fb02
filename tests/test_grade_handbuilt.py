"""A tiny hand-built league where every grade and metric is known by hand."""
from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from nbcore import grade, lineage
from nbcore.state import partition_states
from nbcore.predict import run_predict
from predict_fixtures import box, feature, game, open_fresh, put, tiny_params

D1, D2, D3 = date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 12)


@pytest.fixture
def tiny(tmp_path):
    params = tiny_params(tmp_path)
    wh = open_fresh(params)
    put(wh, "nbac_schedule", [game("G1", D1), game("G2", D2), game("G3", D3, status="scheduled")])
    put(wh, "ml_feature_store_v2", [
        feature("G1", D1, "a", 20.0, 18.5),   # OVER by 1.5; scores 22: right, error -2
        feature("G1", D1, "b", 10.0, 12.5),   # UNDER by 2.5; scores 15: wrong, error -5
        feature("G1", D1, "c", 15.0, 15.0),   # edge 0: PASS; scores 15, error 0
        feature("G1", D1, "d", 8.0, 7.0),     # OVER by 1.0 (= threshold); scores 7: push, error +1
        feature("G1", D1, "e", 12.0, None),   # no line: PASS; scores 9, error +3
        feature("G1", D1, "f", 11.0, 10.5),   # OVER, but did not play: voided
        feature("G2", D2, "a", 20.0, 19.5),   # game final, analytics not there yet
        feature("G3", D3, "a", 20.0, 19.5),   # game not final
    ])
    put(wh, "player_game_summary", [box("G1", D1, "a", 22), box("G1", D1, "b", 15), box("G1", D1, "c", 15),
                                    box("G1", D1, "d", 7), box("G1", D1, "e", 9)])
    put(wh, "nbac_gamebook_player_stats", [{"game_id": "G1", "game_date": D1, "season_year": 2023, "player_id": 6,
                                             "player_lookup": "f", "team_abbr": "AAA", "player_status": "dnp",
                                             "dnp_reason": "DNP - Coach's Decision"}])
    yield params, wh
    wh.close()


def test_calls_follow_the_threshold(tiny):
    params, wh = tiny
    run_predict(params, wh=wh, progress=False)
    p = wh.query("SELECT player_lookup, game_id, predicted_points, edge, recommendation, confidence, points_line "
                 "FROM nba_predictions.player_prop_predictions WHERE system_id = 'moving_average'")
    p = p.set_index(["game_id", "player_lookup"])
    assert p.loc[("G1", "a"), "recommendation"] == "OVER" and p.loc[("G1", "a"), "edge"] == 1.5
    assert p.loc[("G1", "b"), "recommendation"] == "UNDER" and p.loc[("G1", "b"), "edge"] == -2.5
    assert p.loc[("G1", "c"), "recommendation"] == "PASS"
    assert p.loc[("G1", "d"), "recommendation"] == "OVER"
    assert p.loc[("G1", "e"), "recommendation"] == "PASS" and pd.isna(p.loc[("G1", "e"), "confidence"])
    # confidence = P(right side) under N(0, sigma=points_std_season=5): Phi(1.5/5)
    assert p.loc[("G1", "a"), "confidence"] == pytest.approx(0.5 + 0.5 * math.erf(1.5 / 5 / math.sqrt(2)), abs=1e-4)
    n = wh.query("SELECT system_id, COUNT(*) AS n FROM nba_predictions.player_prop_predictions GROUP BY 1")
    assert dict(zip(n.system_id, n.n)) == {"moving_average": 8, "matchup_adjusted": 8, "regression": 8, "ensemble": 8}


def test_grades_and_metrics_known_by_hand(tiny):
    params, wh = tiny
    run_predict(params, wh=wh, progress=False)
    result = grade.run_grade(params, wh=wh, progress=False)
    acc = wh.query("SELECT * FROM nba_predictions.prediction_accuracy WHERE system_id = 'moving_average'")
    acc = acc.set_index("player_lookup")
    assert set(acc.game_id) == {"G1"}  # G2 awaits analytics, G3 is not final
    assert acc.loc["a", "was_correct"] == True and acc.loc["a", "signed_error"] == -2  # noqa: E712
    assert acc.loc["b", "was_correct"] == False and acc.loc["b", "absolute_error"] == 5  # noqa: E712
    assert pd.isna(acc.loc["c", "was_correct"])  # PASS
    assert pd.isna(acc.loc["d", "was_correct"]) and acc.loc["d", "is_push"] == True  # noqa: E712
    assert acc.loc["f", "is_voided"] == True and pd.isna(acc.loc["f", "absolute_error"])  # noqa: E712
    assert acc.loc["f", "void_reason"].startswith("dnp")
    assert acc.loc["e", "within_3"] == True and acc.loc["b", "within_3"] == False  # noqa: E712

    m = result.metrics(["system_id"]).set_index("system_id").loc["moving_average"]
    assert m.graded == 5 and m.voided == 1
    assert m.mae == pytest.approx((2 + 5 + 0 + 1 + 3) / 5)
    assert m.bias == pytest.approx((-2 - 5 + 0 + 1 + 3) / 5)
    assert (m.calls, m.correct, m.wrong, m.pushes, m.passes, m.no_line) == (3, 1, 1, 1, 1, 1)
    assert m.hit_rate == pytest.approx(0.5)
    lo, hi = grade.wilson_interval(1, 2)
    assert (m.hit_rate_low, m.hit_rate_high) == (pytest.approx(lo), pytest.approx(hi))
    assert lo == pytest.approx(0.0945, abs=1e-4) and hi == pytest.approx(0.9055, abs=1e-4)
    assert m.within_3_pct == pytest.approx(80.0) and m.within_5_pct == pytest.approx(100.0)
    assert result.summary()["not_eligible"] == {"not_final": 4, "awaiting_analytics": 4}

    comp = grade.grading_completeness(wh, params).set_index("season_year").loc[2023]
    # 4 systems x 8 feature rows; G3 not final, f voided, G2 eligible but ungraded
    assert (comp.predictions, comp.not_final, comp.voided, comp.awaiting_analytics) == (32, 4, 4, 4)
    assert (comp.eligible, comp.graded) == (24, 20)
    assert comp.completeness_pct == pytest.approx(100 * 20 / 24)


def test_regrade_is_a_no_op_and_analytics_backfill_grades_the_rest(tiny):
    params, wh = tiny
    run_predict(params, wh=wh, progress=False)
    grade.run_grade(params, wh=wh, progress=False)
    before = wh.checksum("prediction_accuracy")
    again = grade.run_grade(params, wh=wh, progress=False)
    assert again.dates == [] and wh.checksum("prediction_accuracy") == before
    forced = grade.run_grade(params.model_copy(update={"regrade": True}), wh=wh, progress=False)
    assert forced.dates == [D1] and wh.checksum("prediction_accuracy") == before

    put(wh, "player_game_summary", [box("G2", D2, "a", 30)])  # analytics for G2 arrive
    later = grade.run_grade(params, wh=wh, progress=False)
    assert later.dates == [D2]
    comp = grade.grading_completeness(wh, params).set_index("season_year").loc[2023]
    assert (comp.eligible, comp.graded, comp.completeness_pct) == (24, 24, 100.0)


def test_stale_grade_is_redone_after_a_correction(tiny):
    params, wh = tiny
    run_predict(params, wh=wh, progress=False)
    grade.run_grade(params, wh=wh, progress=False)
    put(wh, "player_game_summary", [box("G1", D1, "a", 10), box("G1", D1, "b", 15), box("G1", D1, "c", 15),
                                    box("G1", D1, "d", 7), box("G1", D1, "e", 9)])  # a's points corrected
    # ... as derive writes a correction: with the partition's lineage, so the grades that read it go stale
    lineage.record_lineage(wh, [lineage.PartitionWrite(lineage.schema.table("player_game_summary").fqn, D1, True)],
                           lineage.Windows({}), run_id="correction", stage="derive")
    assert partition_states(wh, params).state("prediction_accuracy", D1) == "stale"
    grade.run_grade(params, wh=wh, progress=False)
    a = wh.query("SELECT actual_points, was_correct FROM nba_predictions.prediction_accuracy "
                 "WHERE system_id = 'moving_average' AND player_lookup = 'a'")
    assert int(a.actual_points.iloc[0]) == 10 and not a.was_correct.iloc[0]
