"""Real box-score quirks (issue 12) on the small demo league, which has them all:
short-handed games, 0:00 appearances with points, and a prop source with gaps (waived)."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from nbcore.derive import run_derive
from nbcore.gate import GateBlocked, run_gate, waived_dates
from nbcore.grade import run_grade
from nbcore.params import ParamsError
from nbcore.predict import run_predict
from nbcore.sources import BOXSCORES, PROPS
from nbcore.validate import run_validate
from nbcore.waivers import waived
from nbcore.warehouse import open_warehouse


def write_waivers(params, tmp_path: Path, *extra: dict, with_example: bool = True):
    """A waiver file: the demo's own (params/waivers.example.yaml) plus ``extra`` entries."""
    entries = list(yaml.safe_load(Path(params.waivers).read_text())["waivers"]) if with_example else []
    entries += [{"reason": "Reviewed with the data owner; the numbers are right.", "approved_by": "jane.doe", **e}
                for e in extra]
    path = tmp_path / "waivers.yaml"
    path.write_text(yaml.safe_dump({"waivers": entries}, sort_keys=False))
    return params.model_copy(update={"waivers": path})


# ``loaded`` (conftest.py): the small demo after load, raw complete but for the waived prop gaps


# -- 2. plausibility calibrated on the data, with a severity; waivable per game ----------------

def test_short_handed_games_warn_and_never_block(loaded):
    params, built = loaded
    short = set(built.league.quirks.short_handed)
    with open_warehouse(params) as wh:
        result = run_validate(params, wh, progress=False)
    warned = result.open_findings("warn")
    bdl = warned[(warned.check == "players per game") & (warned.table == BOXSCORES)]
    assert set(bdl.game_id) == short  # exactly the short-handed games, each named with its date
    assert all("14 players, outside the" in d and "calibrated on" in d for d in bdl.detail)
    assert result.failed_checks.empty, result.failed_checks  # unusual is not impossible
    gate = run_gate(params, raise_on_block=False)
    assert gate.status == "passed"
    assert not gate.blocking and not gate.reported
    assert {p.date for p in gate.warnings if p.source == BOXSCORES} == set(bdl.game_date)


def test_an_impossible_game_blocks_at_its_date_and_a_game_waiver_clears_it(loaded, tmp_path):
    params, _ = loaded
    with open_warehouse(params) as wh:
        g = wh.query("SELECT game_id, game_date, team_abbr FROM nba_raw.bdl_player_boxscores "
                     "WHERE game_date = (SELECT MAX(game_date) FROM nba_raw.bdl_player_boxscores) "
                     "ORDER BY game_id, team_abbr LIMIT 1").iloc[0]
        # one team's file lists only three players (the rest of the roster was cut off)
        wh.execute("DELETE FROM nba_raw.bdl_player_boxscores WHERE game_id = @g AND team_abbr = @t AND player_lookup NOT IN "
                   "(SELECT player_lookup FROM nba_raw.bdl_player_boxscores WHERE game_id = @g AND team_abbr = @t "
                   "ORDER BY player_lookup LIMIT 3)", {"g": g.game_id, "t": g.team_abbr})
    day = g.game_date.date() if hasattr(g.game_date, "date") else g.game_date
    with pytest.raises(GateBlocked) as blocked:
        run_gate(params)
    found = [p for p in blocked.value.result.blocking if p.check == "players per game"]
    assert [(p.source, p.date) for p in found] == [(BOXSCORES, day)]
    assert f"{g.team_abbr} has 3 players" in found[0].detail
    # the team points do not add up either, at the same game and date
    assert any(p.check == "team points vs final score" and p.date == day for p in blocked.value.result.blocking)

    # waived where it was found: that game, those two checks, with reason and approver
    waived_params = write_waivers(params, tmp_path, *(
        {"source": BOXSCORES, "games": [g.game_id], "check": c} for c in ("players per game", "team points vs final score")))
    gate = run_gate(waived_params)
    assert gate.status == "passed"
    listed = {(w["source"], w["game_id"], w["check"], w["approved_by"]) for w in gate.waived if w.get("game_id")}
    assert (BOXSCORES, g.game_id, "players per game", "jane.doe") in listed
    assert (BOXSCORES, g.game_id, "team points vs final score", "jane.doe") in listed


def test_a_waiver_must_say_where_and_which_check(demo_copy, tmp_path):
    params, _ = demo_copy
    bad = write_waivers(params, tmp_path, {"source": BOXSCORES, "games": ["1"], "season": 2023}, with_example=False)
    with pytest.raises(ParamsError, match="give exactly one of: dates, games, or season"):
        waived(bad)
    bad = write_waivers(params, tmp_path, {"source": BOXSCORES, "games": ["1"], "check": "players"}, with_example=False)
    with pytest.raises(ParamsError, match="unknown check 'players'; checks are: complete against the schedule"):
        waived(bad)


def test_a_whole_game_type_of_a_season_is_one_line(demo_copy):
    params, built = demo_copy
    s = built.league.schedule
    play_in = sorted(set(s[(s.season_year == 2023) & (s.game_type == "play_in") & (s.game_status == "final")].game_date))
    assert len(play_in) == 3
    index = waived(params)  # params/waivers.example.yaml: one line for the 2023-24 play-in
    assert {d for (src, d) in index if src == PROPS} >= set(play_in)
    assert waived_dates(params, [PROPS]) == sorted(index.dates(PROPS))
    w = index.for_date(PROPS, play_in[0])
    assert w.where() == "play_in games of 2023-24" and w.approved_by.startswith("jane.doe")


# -- 3. a waived optional source does not break derive, predict or grade ----------------------

def test_waived_prop_lines_do_not_block_derive_predict_or_grade(demo_copy):
    params, built = demo_copy
    dry = built.league.quirks.no_lines[PROPS][-1]  # no book posted lines that night (waived)
    strict = params.model_copy(update={"backfill_mode": False, "strict_mode": True})
    with open_warehouse(params) as wh:
        unwaived = run_derive(strict.model_copy(update={"waivers": None}), wh, progress=False, dates=[dry], raise_on_failure=False)
        assert unwaived.status == "failed" and unwaived.dependency["upstream"] == f"nba_raw.{PROPS}"
        result = run_derive(strict, wh, progress=False, dates=[dry])
        assert result.status == "succeeded", result.error
        assert dry in result.processed_dates
        ctx = wh.query("SELECT COUNT(*) AS n, COUNT(points_line) AS lines FROM nba_analytics.upcoming_player_game_context "
                       "WHERE game_date = @d", {"d": dry}).iloc[0]
        assert ctx.n > 0 and ctx.lines == 0  # the context is built, without lines
        wh.execute("DELETE FROM nba_predictions.prediction_accuracy WHERE game_date = @d", {"d": dry})
        wh.execute("DELETE FROM nba_predictions.player_prop_predictions WHERE game_date = @d", {"d": dry})
        predicted = run_predict(strict, wh, progress=False, dates=[dry])
        graded = run_grade(strict, wh, progress=False, dates=[dry], metrics=False)
    assert predicted.status in ("succeeded", "skipped") and graded.status in ("succeeded", "skipped")


# -- 5. a player with 0:00 minutes who appears in the box score played ------------------------

def test_zero_minute_scorers_are_kept_and_team_points_add_up(demo_copy):
    params, built = demo_copy
    cameos = built.league.quirks.cameos
    assert cameos and all(c["points"] > 0 for c in cameos)
    with open_warehouse(params) as wh:
        for c in cameos:
            raw = wh.query("SELECT minutes, points FROM nba_raw.bdl_player_boxscores WHERE game_id = @g AND player_lookup = @p",
                           {"g": c["game_id"], "p": c["player_lookup"]}).iloc[0]
            assert raw.minutes == "0:00" and raw.points == c["points"]
        days = wh.query("SELECT game_date FROM nba_raw.nbac_schedule WHERE game_id IN UNNEST(@g)",
                        {"g": [c["game_id"] for c in cameos]}).game_date
        rebuilt = run_derive(params.model_copy(update={"tables": ["player_game_summary"]}), wh, progress=False,
                             dates=list(days))
        assert rebuilt.status == "succeeded", rebuilt.error
        for c in cameos:
            row = wh.query("SELECT minutes, points FROM nba_analytics.player_game_summary WHERE game_id = @g AND player_lookup = @p",
                           {"g": c["game_id"], "p": c["player_lookup"]})
            assert len(row) == 1 and row.minutes.iloc[0] == 0 and row.points.iloc[0] == c["points"], c
        result = run_validate(params, wh, progress=False)
    pts = result.checks.set_index(["check", "table"]).loc[("team points vs final score", "player_game_summary")]
    assert pts.violations == 0


# -- 6. reconciliation: team points vs the final score; phase 2 and phase 3 agree --------------

def test_reconciliation_catches_a_dropped_player_and_a_box_score_that_does_not_add_up(loaded, tmp_path):
    params, built = loaded
    c = built.league.quirks.cameos[0]
    with open_warehouse(params) as wh:
        clean = run_validate(params, wh, progress=False)
        rows = clean.checks.set_index(["check", "table"])
        assert rows.loc[("phase 2 vs phase 3 rows", "player_game_summary")].violations == 0
        assert "player-game rows in phase 2 and" in rows.loc[("phase 2 vs phase 3 rows", "player_game_summary")].example
        # what `minutes > 0` did: the 0:00 scorer is missing from phase 3
        wh.execute("DELETE FROM nba_analytics.player_game_summary WHERE game_id = @g AND player_lookup = @p",
                   {"g": c["game_id"], "p": c["player_lookup"]})
        # and a box score whose points do not add up to the final score (one basket lost)
        other = wh.query("SELECT game_id, player_lookup, team_abbr FROM nba_raw.nbac_gamebook_player_stats "
                         "WHERE player_status = 'active' AND fgm > fg3m AND game_id != @g ORDER BY game_id, player_lookup LIMIT 1",
                         {"g": c["game_id"]}).iloc[0]
        wh.execute("UPDATE nba_raw.nbac_gamebook_player_stats SET fgm = fgm - 1, fga = fga - 1, points = points - 2 "
                   "WHERE game_id = @g AND player_lookup = @p", {"g": other.game_id, "p": other.player_lookup})
        dirty = run_validate(params, wh, progress=False)
    f = dirty.open_findings("block")
    phase = f[f.check == "phase 2 vs phase 3 rows"]
    assert list(phase.game_id) == [c["game_id"]] and "player_game_summary has" in phase.detail.iloc[0]
    pgs_points = f[(f.check == "team points vs final score") & (f.table == "player_game_summary")]
    assert list(pgs_points.game_id) == [c["game_id"]]
    assert f"{c['team_abbr']} players scored" in pgs_points.detail.iloc[0]
    gb_points = f[(f.check == "team points vs final score") & (f.table == "nbac_gamebook_player_stats")]
    assert list(gb_points.game_id) == [other.game_id]

    # the gate blocks on the raw source, at that game's date; phase 3 is only reported
    gate = run_gate(params, raise_on_block=False)
    assert gate.status == "blocked"
    assert [(p.check, p.source) for p in gate.blocking] == [("team points vs final score", "nbac_gamebook_player_stats")]
    assert {(p.check, p.source) for p in gate.reported} >= {("phase 2 vs phase 3 rows", "player_game_summary")}
    # a waiver for that game and check: the gate passes and lists it
    ok = run_gate(write_waivers(params, tmp_path, {"source": "nbac_gamebook_player_stats", "games": [other.game_id],
                                                   "check": "team points vs final score"}), raise_on_block=False)
    assert ok.status == "passed"
    assert any(w.get("game_id") == other.game_id for w in ok.waived)


def test_phase_rows_agree_per_season_on_the_demo(demo_copy):
    params, _ = demo_copy
    with open_warehouse(params) as wh:
        result = run_validate(params, wh, progress=False)
    row = result.checks.set_index(["check", "table"]).loc[("phase 2 vs phase 3 rows", "player_game_summary")]
    assert row.violations == 0 and row.severity == "block"
    assert row.example.startswith("2023: ") and "; 2024: " in row.example
