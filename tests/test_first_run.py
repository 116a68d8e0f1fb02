"""A first run: an empty warehouse next to a full bucket expects every scheduled game."""
from __future__ import annotations

import pandas as pd

from nbcore.validate import run_validate
from nbcore.warehouse import open_warehouse
from tests.conftest import small_params


def empty_warehouse_params(small_demo, tmp_path):
    """The small demo's bucket, and a warehouse file that does not exist yet."""
    params, _ = small_demo
    return small_params(tmp_path).model_copy(update={"bucket": params.bucket})


def test_empty_warehouse_reports_every_expected_date_missing(small_demo, tmp_path):
    demo_params, built = small_demo
    params = empty_warehouse_params(small_demo, tmp_path)
    final = built.league.schedule[built.league.schedule.game_status == "final"]
    with open_warehouse(params) as wh:
        result = run_validate(params, wh, progress=False)
    assert not result.complete
    for t in result.tables:
        season = final[final.season_year == t.season_year]
        assert t.present == [] and t.rows == 0
        # every date is missing, but the prop gaps params/waivers.example.yaml waives (listed apart)
        assert sorted(t.missing + list(t.waived)) == sorted(set(season.game_date)), t.table
        assert not t.waived or t.table == "odds_api_player_points_props"
    assert {s: o.endswith(f"nbac_schedule/{s}.json") for s, o in result.scope["expected_from"].items()} == \
        {"2023": True, "2024": True}


def test_a_season_without_schedule_rows_or_file_is_named(small_demo, tmp_path):
    params = empty_warehouse_params(small_demo, tmp_path).model_copy(update={"seasons": [2023, 2024, 2022]})
    with open_warehouse(params) as wh:
        result = run_validate(params, wh, progress=False)
    assert result.scope["expected_from"]["2022"].startswith("none: no schedule rows in the warehouse and no file")
