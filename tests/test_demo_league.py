"""The demo league looks like the real one: sizes, calendars, box scores that add up."""
from datetime import date

import numpy as np
import pandas as pd
import pytest

from nbcore.demo.league import generate_league


@pytest.fixture(scope="module")
def full_league():
    return generate_league(seed=7, scale="full")


def test_same_seed_same_league():
    a, b = generate_league(3, "small"), generate_league(3, "small")
    pd.testing.assert_frame_equal(a.boxscores, b.boxscores)
    pd.testing.assert_frame_equal(a.props, b.props)
    assert not generate_league(4, "small").boxscores.equals(a.boxscores)


@pytest.mark.slow  # generates the full-scale league (the real league's sizes need it)
def test_season_sizes_match_the_real_league(full_league):
    s = full_league.schedule
    final = s[s.game_status == "final"]
    for season in (2021, 2022, 2023, 2024):
        games = final[final.season_year == season]
        by_type = games.groupby("game_type").game_id.count()
        assert by_type["regular"] == 1230
        assert by_type["play_in"] == 6
        assert 80 <= by_type["playoffs"] <= 90
        assert games[games.game_type == "play_in"].game_date.nunique() == 3
        assert 38 <= games[games.game_type == "playoffs"].game_date.nunique() <= 50
        assert 158 <= games[games.game_type == "regular"].game_date.nunique() <= 166
        teams = pd.concat([games[games.game_type == "regular"].home_team, games[games.game_type == "regular"].away_team])
        assert (teams.value_counts() == 82).all() and teams.nunique() == 30
    # the NBA Cup final exists from 2023-24 on, in December
    cup = final[final.game_type == "cup_final"]
    assert sorted(cup.season_year) == [2023, 2024, 2025] and all(d.month == 12 for d in cup.game_date)
    # 2025-26 is in progress: played up to 2026-01-01, the rest only scheduled
    cur = s[s.season_year == 2025]
    assert cur[cur.game_status == "final"].game_date.max() < date(2026, 1, 1)
    assert cur[cur.game_status == "scheduled"].game_date.min() >= date(2026, 1, 1)
    assert 5000 <= len(final) <= 6500
    assert 100_000 <= len(full_league.boxscores) <= 140_000


@pytest.mark.slow  # generates the full-scale league (the real league's sizes need it)
def test_box_scores_hang_together(full_league):
    b = full_league.boxscores
    assert (b.points == 2 * b.fgm + b.fg3m + b.ftm).all()
    assert (b.fgm <= b.fga).all() and (b.fg3m <= b.fg3a).all() and (b.ftm <= b.fta).all() and (b.fg3m <= b.fgm).all()
    assert (b.reb == b.oreb + b.dreb).all()
    per_game = b.groupby("game_id").player_lookup.nunique()
    assert 19 <= per_game.mean() <= 24
    # team minutes: 240 plus 25 per overtime period
    gb = full_league.gamebook
    mins = gb.groupby(["game_id", "team_abbr"]).minutes.sum().round().astype(int).reset_index()
    final = full_league.schedule[full_league.schedule.game_status == "final"]
    periods = final.set_index("game_id").periods.astype(int)
    expected = 240 + 25 * (mins.game_id.map(periods) - 4)
    assert (mins.minutes == expected).all()
    # team scores equal the sum of player points; no ties
    sched = full_league.schedule[full_league.schedule.game_status == "final"].set_index("game_id")
    pts = b.groupby(["game_id", "team_abbr"]).points.sum()
    home = pts.loc[list(zip(sched.index, sched.home_team))].to_numpy()
    assert (home == sched.home_score.to_numpy()).all()
    assert (sched.home_score != sched.away_score).all()


@pytest.mark.slow  # generates the full-scale league (the real league's sizes need it)
def test_gamebook_has_dnp_and_inactive_players(full_league):
    gb = full_league.gamebook
    counts = gb.player_status.value_counts()
    assert {"active", "dnp", "inactive"} <= set(counts.index)
    assert gb[gb.player_status != "active"].minutes.isna().all()
    assert (gb[gb.player_status == "dnp"].dnp_reason.str.startswith("DNP")).all()


@pytest.mark.slow  # generates the full-scale league (the real league's sizes need it)
def test_traded_players_appear_for_several_teams(full_league):
    b = full_league.boxscores
    b = b.assign(season=b.game_id.str[3:5])
    teams = b.groupby(["season", "player_id"]).team_abbr.nunique()
    assert (teams >= 2).sum() >= 10


@pytest.mark.slow  # generates the full-scale league (the real league's sizes need it)
def test_postponed_games_are_played_later(full_league):
    s = full_league.schedule
    moved = s[s.original_game_date.notna()]
    assert len(moved) >= 10
    assert (moved.game_date > moved.original_game_date).all()


@pytest.mark.slow  # generates the full-scale league (the real league's sizes need it)
def test_prop_lines_for_rotation_players(full_league):
    p = full_league.props
    assert set(p.bookmaker) == {"draftkings", "fanduel"}
    assert (p.points_line >= 2.5).all() and (p.points_line * 2 == np.round(p.points_line * 2)).all()
    per_game = p.groupby("game_id").player_lookup.nunique()
    assert 12 <= per_game.mean() <= 20
