"""Convergence: after a backfill, every derived table equals what a hole-free pipeline builds from
the same raw tables, row for row; staleness is found from recorded lineage, cause by cause."""
from __future__ import annotations

import shutil
from datetime import date, timedelta

import pandas as pd
import pytest

from conftest import small_params
from nbcore import convergence, lineage
from nbcore.derive import run_derive
from nbcore.grade import run_grade
from nbcore.load import run_load
from nbcore.predict import run_predict
from nbcore.warehouse import open_warehouse
from nbcore.why import why

PGS = "nba_analytics.player_game_summary"
TDZA = "nba_precompute.team_defense_zone_analysis"
PSZA = "nba_precompute.player_shot_zone_analysis"
PRED = "nba_predictions.player_prop_predictions"
ACC = "nba_predictions.prediction_accuracy"
pytestmark = pytest.mark.slow  # whole backfills and rebuilds of the small demo


def backfill(params) -> dict:
    """The writing stages, in order, in-process (what the runbook's notebooks call)."""
    out = {"load": run_load(params, progress=False)}
    out["derive"] = run_derive(params, progress=False)
    out["predict"] = run_predict(params, progress=False)
    out["grade"] = run_grade(params, progress=False, metrics=False)
    return out


def _copy(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src.duckdb_path, dst / "warehouse.duckdb")
    if not (dst / "bucket").exists():
        shutil.copytree(src.bucket, dst / "bucket")
    return small_params(dst, chunk_days=30)


@pytest.fixture(scope="module")
def planned_and_backfilled(small_demo, tmp_path_factory):
    """The small demo after one backfill (load, derive, predict, grade), the stage results, and the
    plan ``runbook plan`` made just before it."""
    from nbcore.plan import plan_run

    src, built = small_demo
    params = _copy(src, tmp_path_factory.mktemp("converge"))
    plan = plan_run(params)
    return params, built, backfill(params), plan


@pytest.fixture(scope="module")
def backfilled(planned_and_backfilled):
    """The small demo after one backfill (load, derive, predict, grade), and the stage results."""
    return planned_and_backfilled[:3]


def test_a_backfill_equals_a_rebuild_from_raw_row_for_row(backfilled, tmp_path):
    params, _, results = backfilled
    rebuilt = convergence.rebuild_from_raw(params, tmp_path)
    diff = convergence.compare(params, rebuilt.params)
    assert (diff.rows > 0).all(), diff
    assert diff.rows_differing.sum() == 0, diff.to_string()
    # and it did not get there by rewriting everything: restated rows are only those that changed
    assert results["derive"].stale_dates and results["predict"].stale_dates


def test_nothing_is_stale_after_the_backfill_and_a_second_run_writes_nothing(backfilled, tmp_path):
    params, *_ = backfilled
    p = _copy(params, tmp_path)
    with open_warehouse(p, read_only=True) as wh:
        assert lineage.stale_partitions(wh).empty
    again = backfill(p)
    assert again["derive"].requested_dates == [] and sum(again["derive"].rows_written.values()) == 0
    assert again["predict"].dates == [] and again["predict"].rows == 0
    assert again["grade"].dates == []


def _rebuild_row(wh, table, day):
    return wh.query(f"SELECT * FROM {table} WHERE game_date = @d", {"d": day})


def _change_box_score(wh, day: date) -> None:
    """A corrected box score arrives for ``day``: one player's points go up by 2 (recorded as a load)."""
    from nbcore.history import RunRecord, record_runs

    wh.execute("UPDATE nba_raw.bdl_player_boxscores SET points = points + 2, fgm = fgm + 1 "
               "WHERE game_date = @d AND player_lookup = (SELECT MIN(player_lookup) FROM "
               "nba_raw.bdl_player_boxscores WHERE game_date = @d AND points > 10)", {"d": day})
    record_runs(wh, [RunRecord("test-reload", "load", "2", "bdl_player_boxscores", day, True, 1)])


def _first_regular_date(wh, season: int, nth: int = 5) -> date:
    frame = wh.query("SELECT DISTINCT game_date FROM nba_raw.nbac_schedule WHERE season_year = @s "
                     "AND game_type = 'regular' AND game_status = 'final' ORDER BY game_date", {"s": season})
    return pd.Timestamp(frame.game_date.iloc[nth]).date()


def test_each_cause_of_staleness_is_found_from_lineage(backfilled, tmp_path):
    """A changed raw date makes its phase 3 date stale (source cause); rebuilding phase 3 then makes
    the calendar-day window (team defense, 15 days) and the season's last-N-games windows stale,
    and the models that learned from it; nothing before it, nothing outside the windows."""
    params, *_ = backfilled
    p = _copy(params, tmp_path)
    with open_warehouse(p) as wh:
        day = _first_regular_date(wh, 2023)
        _change_box_score(wh, day)
        stale = lineage.stale_partitions(wh)
        assert set(zip(stale.table_name, stale.data_date)) == {(PGS, day)}
        assert set(stale.upstream_table) == {"nba_raw.bdl_player_boxscores"}
        answer = why(p, "player_game_summary", day, wh=wh)
        assert answer.status == "stale" and "nba_raw.bdl_player_boxscores changed on" in answer.explain()
        assert answer.command and f"--start-date {day}" in answer.command
        # phase 3 only: restate it, and look at what went stale downstream
        phase3 = p.model_copy(update={"tables": ["player_game_summary", "team_offense_game_summary",
                                                 "team_defense_game_summary"]})
        r = run_derive(phase3, wh=wh, progress=False)
        assert r.requested_dates == [day] and r.rows_written[PGS] >= 1
        stale = lineage.stale_partitions(wh)
    by_table = stale.groupby("table_name").data_date.apply(set).to_dict()
    tdza = by_table[TDZA]
    # the 15-day window: [D - 15, D] holds the changed day for D in [day, day + 15], no later date
    assert min(tdza) >= day and max(tdza) <= day + timedelta(days=15) and max(tdza) > day + timedelta(days=7)
    psza = by_table[PSZA]
    assert min(psza) >= day and all(d.year <= 2024 and d < date(2024, 7, 1) for d in psza)  # rest of its season only
    preds = by_table[PRED]
    assert min(preds) >= day and max(preds) > date(2024, 7, 1)  # the walk-forward models of the next months too
    assert by_table[ACC] == {day}  # the grades of that day (actual points); later ones follow their predictions
    cause = stale[(stale.table_name == TDZA)].iloc[0]
    assert cause.upstream_table == "nba_analytics.team_defense_game_summary" and cause.upstream_first_date == day


def test_source_fallback_is_restated_when_the_primary_source_arrives(small_demo, tmp_path):
    """A date derived from the gamebook (box scores missing) is stale once the box scores load."""
    src, built = small_demo
    p = _copy(src, tmp_path)
    with open_warehouse(p) as wh:
        partial = wh.query("SELECT game_date, COUNT(*) AS n FROM nba_analytics.player_game_summary "
                           "WHERE primary_source = 'gamebook' GROUP BY game_date ORDER BY n DESC")
    assert len(partial), "the demo has a date whose box scores were missing (gamebook fallback)"
    day = pd.Timestamp(partial.game_date.iloc[0]).date()
    run_load(p, progress=False)  # the box scores arrive
    with open_warehouse(p, read_only=True) as wh:
        stale = lineage.stale_partitions(wh, [PGS])
    assert day in set(stale.data_date) and "nba_raw.bdl_player_boxscores" in set(stale.upstream_table)
    run_derive(p, progress=False)
    with open_warehouse(p, read_only=True) as wh:
        left = wh.query("SELECT COUNT(*) AS n FROM nba_analytics.player_game_summary WHERE game_date = @d "
                        "AND primary_source = 'gamebook'", {"d": day})
    assert int(left.n.iloc[0]) < int(partial.n.iloc[0])


def test_freeze_predictions_keeps_issued_predictions_and_lists_them(backfilled, tmp_path):
    params, *_ = backfilled
    p = _copy(params, tmp_path)
    with open_warehouse(p) as wh:
        day = _first_regular_date(wh, 2023)
        _change_box_score(wh, day)
        run_derive(p, wh=wh, progress=False)
        before = wh.checksum(PRED)
        frozen = run_predict(p.model_copy(update={"freeze_predictions": True}), wh=wh, progress=False)
        assert wh.checksum(PRED) == before and frozen.rows == 0
        assert frozen.frozen_stale_dates and min(frozen.frozen_stale_dates) >= day
        assert frozen.summary()["frozen_stale_dates"]
        restated = run_predict(p, wh=wh, progress=False)
        assert restated.dates == frozen.frozen_stale_dates and wh.checksum(PRED) != before


def test_the_run_executes_exactly_what_was_planned(planned_and_backfilled):
    """``runbook plan`` before the run lists, per table, the dates derive and predict then rebuild,
    date for date (missing and stale, each with its cause); grade rebuilds no date outside it."""
    _, _, results, plan = planned_and_backfilled  # the plan made before the backfill of the other tests
    assert plan.targets[PGS] and any(c.startswith("stale: ") for c in plan.targets[TDZA].values())
    stale_cause = next(c for c in plan.targets[PSZA].values() if c.startswith("stale"))
    assert "player_game_summary is rebuilt by this run on" in stale_cause and "window" in stale_cause
    derived = results["derive"]
    for table, days in derived.table_dates.items():
        assert sorted(days) == plan.dates(table), table
    assert set(plan.targets) >= set(derived.table_dates)
    assert results["predict"].dates == plan.dates(PRED)
    executed = [[c.first.isoformat(), c.last.isoformat(), len(c.dates)] for c in results["predict"].chunks]
    assert executed == plan.chunks["predict"]  # the plan's chunks are the chunks the stage ran
    assert set(results["grade"].dates) <= set(plan.dates(ACC))
    assert plan.to_json()["targets"][PRED]  # what `runbook plan --json` and plan.json carry


def test_validate_reports_stale_dates_and_stale_is_not_complete(backfilled, tmp_path):
    from nbcore.validate import run_validate

    params, *_ = backfilled
    p = _copy(params, tmp_path)
    with open_warehouse(p) as wh:
        assert not any(t.stale for t in run_validate(p, wh=wh, progress=False).tables)
        day = _first_regular_date(wh, 2023)
        _change_box_score(wh, day)
        v = run_validate(p, wh=wh, progress=False)
    assert v.stale_dates(PGS) == [day] and not v.complete
    entry = next(t for t in v.to_status_json()["tables"] if t["table"] == "player_game_summary" and t["stale_dates"])
    assert entry["stale_dates"] == [day.isoformat()] and v.summary()["stale_dates"] == {"player_game_summary": 1}
