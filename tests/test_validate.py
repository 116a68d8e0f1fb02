"""Validate finds exactly the injected holes, and the sanity checks catch each kind of bad row."""
import json
from datetime import date, timedelta

import pandas as pd
import pytest
from click.testing import CliRunner

from nbcore import schema
from nbcore.cli import main
from nbcore.validate import date_ranges, run_validate
from nbcore.warehouse import open_warehouse


def test_validate_finds_every_injected_hole_and_nothing_else(small_demo):
    params, built = small_demo
    result = run_validate(params, progress=False)
    for t in schema.tracked_tables():
        assert set(result.missing_dates(t.name)) == built.holes.missing_dates(t.name), t.name


def test_a_date_missing_from_every_phase_is_still_a_gap(small_demo):
    params, built = small_demo
    result = run_validate(params, progress=False)
    everywhere = set.intersection(*(set(v) for v in built.holes.raw_missing.values()))
    assert everywhere, "the demo injects one date missing from every source"
    for t in schema.tracked_tables():
        assert everywhere <= set(result.missing_dates(t.name)), t.name


def test_partial_date_names_the_missing_game(small_demo):
    params, built = small_demo
    result = run_validate(params, progress=False)
    (day, games), = built.holes.partial["bdl_player_boxscores"].items()
    assert result.partial_dates("bdl_player_boxscores") == {day: games}
    row = result.missing_table()
    assert games[0] in " ".join(row["partial games"])


def test_status_json_shape(small_demo):
    params, _ = small_demo
    out = CliRunner().invoke(main, ["status", "--json", "--params", str(_params_file(params))])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    first = doc["tables"][0]
    assert {"phase", "table", "season_year", "expected_dates", "present_dates", "missing_dates", "rows"} <= set(first)
    assert all(len(d) == 10 for t in doc["tables"] for d in t["missing_dates"])


def _params_file(params):
    import yaml

    path = params.duckdb_path.parent / "params.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    return path


def test_date_ranges_group_consecutive_game_dates():
    expected = [date(2024, 4, d) for d in (1, 2, 4, 5, 9, 10)]
    ranges = date_ranges([date(2024, 4, 2), date(2024, 4, 4), date(2024, 4, 10)], expected)
    assert [r.label() for r in ranges] == ["2024-04-02 → 2024-04-04 (2 dates)", "2024-04-10"]


def test_postponed_game_is_expected_on_the_day_it_was_played(demo_copy):
    params, built = demo_copy
    with open_warehouse(params) as wh:
        before = run_validate(params, wh=wh, progress=False)
        # move one game (schedule and its box scores) from its date to a later off night
        played = sorted(set(before.expected_dates("bdl_player_boxscores")))
        later = next(d + timedelta(days=1) for d in played if d + timedelta(days=1) not in played)  # an off night
        original = max(d for d in played if d < later)
        g = wh.query("SELECT game_id FROM nba_raw.nbac_schedule WHERE game_status = 'final' AND game_date = @d "
                     "ORDER BY game_id LIMIT 1", {"d": original}).iloc[0]
        p = {"g": g.game_id, "d": later}
        wh.execute("UPDATE nba_raw.nbac_schedule SET original_game_date = game_date, game_date = @d WHERE game_id = @g", p)
        wh.execute("UPDATE nba_raw.bdl_player_boxscores SET game_date = @d WHERE game_id = @g", p)
        after = run_validate(params, wh=wh, progress=False)
    assert later in set(after.expected_dates("bdl_player_boxscores"))
    assert later not in after.missing_dates("bdl_player_boxscores")
    # the original date is still complete without the moved game
    assert original not in after.missing_dates("bdl_player_boxscores")
    assert original in set(after.expected_dates("bdl_player_boxscores"))


@pytest.mark.parametrize(
    "kind, sql, check",
    [
        ("duplicate", "INSERT INTO nba_raw.bdl_player_boxscores SELECT * FROM nba_raw.bdl_player_boxscores LIMIT 1",
         ("duplicate keys", "bdl_player_boxscores")),
        ("null key", "UPDATE nba_raw.nbac_gamebook_player_stats SET player_lookup = NULL WHERE player_lookup = (SELECT MIN(player_lookup) FROM nba_raw.nbac_gamebook_player_stats)",
         ("NULL key columns", "nbac_gamebook_player_stats")),
        ("negative", "UPDATE nba_raw.bdl_player_boxscores SET reb = -3 WHERE player_lookup = (SELECT MIN(player_lookup) FROM nba_raw.bdl_player_boxscores)",
         ("impossible values", "bdl_player_boxscores")),
        ("points", "UPDATE nba_raw.nbac_gamebook_player_stats SET points = points + 5 WHERE player_status = 'active' AND player_lookup = (SELECT MIN(player_lookup) FROM nba_raw.nbac_gamebook_player_stats)",
         ("impossible values", "nbac_gamebook_player_stats")),
        ("makes", "UPDATE nba_raw.bdl_player_boxscores SET fgm = fga + 1, points = 2 * (fga + 1) + fg3m + ftm WHERE player_lookup = (SELECT MIN(player_lookup) FROM nba_raw.bdl_player_boxscores)",
         ("impossible values", "bdl_player_boxscores")),
        ("too few players", "DELETE FROM nba_raw.bdl_player_boxscores WHERE game_id = (SELECT MIN(game_id) FROM nba_raw.bdl_player_boxscores) AND player_lookup > 'c'",
         ("players per game", "bdl_player_boxscores")),
    ],
)
def test_sanity_checks_catch_each_kind_of_bad_row(demo_copy, kind, sql, check):
    params, _ = demo_copy
    with open_warehouse(params) as wh:
        clean = run_validate(params, wh=wh, progress=False)
        assert clean.failed_checks.empty, clean.failed_checks
        wh.execute(sql)
        dirty = run_validate(params, wh=wh, progress=False)
    failed = {(r.check, r.table) for r in dirty.failed_checks.itertuples()}
    assert check in failed, (kind, failed)
