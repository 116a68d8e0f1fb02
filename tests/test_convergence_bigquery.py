"""Staleness on BigQuery: the same lineage query and change-only writes, through the real
google-cloud-bigquery client against the loopback server."""
from __future__ import annotations

import pandas as pd
import pytest

from bqserver import BigQueryLoopback
from conftest import small_params
from nbcore import lineage
from nbcore.demo.build import build_demo
from nbcore.derive import run_derive
from nbcore.grade import run_grade
from nbcore.history import RunRecord, record_runs
from nbcore.predict import run_predict
from nbcore.warehouse import open_warehouse

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

PGS = "nba_analytics.player_game_summary"
TDZA = "nba_precompute.team_defense_zone_analysis"


@pytest.fixture(scope="module")
def bq(tmp_path_factory):
    with BigQueryLoopback() as srv:
        root = tmp_path_factory.mktemp("bq_converge")
        params = small_params(root, backend="bigquery", chunk_days=30, end_date="2024-04-14", seasons=[2023], bigquery={
            "project": "demo-project", "dataset_suffix": "_conv", "api_endpoint": srv.endpoint})
        build_demo(params, progress=False)
        yield params


def test_a_changed_box_score_is_stale_on_bigquery_and_one_run_restates_its_closure(bq):
    p = bq.model_copy(update={"backfill_mode": True})
    with open_warehouse(p) as wh:
        day = pd.Timestamp(wh.query(
            "SELECT MIN(game_date) AS d FROM nba_analytics.player_game_summary WHERE game_date >= '2024-03-28'"
        ).d.iloc[0]).date()
        wh.execute("UPDATE nba_raw.bdl_player_boxscores SET points = points + 2, fgm = fgm + 1 "
                   "WHERE game_date = @d AND player_lookup = (SELECT MIN(player_lookup) FROM "
                   "nba_raw.bdl_player_boxscores WHERE game_date = @d AND points > 10)", {"d": day})
        record_runs(wh, [RunRecord("test-reload", "load", "2", "bdl_player_boxscores", day, True, 1)])
        stale = lineage.stale_partitions(wh)
        assert set(zip(stale.table_name, stale.data_date)) == {(PGS, day)}
        before = wh.checksum(PGS)

        derived = run_derive(p, wh=wh, progress=False)
        assert day in derived.table_dates[PGS] and wh.checksum(PGS) != before
        # change-only writes: of the rows already there, only the corrected player's row was replaced
        assert derived.rows_deleted[PGS] == 1
        assert any(d > day for d in derived.table_dates[TDZA])  # the 15-day window, restated in the same run
        run_predict(p, wh=wh, progress=False)
        run_grade(p, wh=wh, progress=False, metrics=False)
        # inside the run's window nothing is stale; after its end_date, the play-in dates that read the
        # changed day are stale (a run restates only its window) and say so
        left = lineage.stale_partitions(wh, end=p.end_date)
        assert left.empty, left.to_string()
        after = lineage.stale_partitions(wh, start=p.end_date)
        assert len(after) and (after.data_date > p.end_date).all()

        again = run_derive(p, wh=wh, progress=False)
        # a second run writes nothing (the raw holes this test never loaded keep their dates missing,
        # so their windows are recomputed again, and no row changes)
        assert sum(again.rows_written.values()) == 0 and sum(again.rows_deleted.values()) == 0
