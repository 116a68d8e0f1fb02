"""Derived values: no look-ahead for every phase 4 table, hand-checked rolling averages and
defensive ratings, and the box-score merge of player_game_summary."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from derive_fixtures import PHASE4, fresh_copy, rows_on
from nbcore.derive import run_derive
from nbcore.warehouse.duckdb import DuckDBWarehouse

RAW = ["nba_raw.bdl_player_boxscores", "nba_raw.nbac_gamebook_player_stats",
       "nba_raw.odds_api_player_points_props", "nba_raw.nbac_schedule"]
PHASE3 = ["nba_analytics.player_game_summary", "nba_analytics.team_offense_game_summary",
          "nba_analytics.team_defense_game_summary", "nba_analytics.upcoming_player_game_context"]


def _read(params, sql, p=None):
    wh = DuckDBWarehouse(params.duckdb_path, read_only=True)
    try:
        return wh.query(sql, p)
    finally:
        wh.close()


# -- no look-ahead -------------------------------------------------------------------------------

@pytest.mark.parametrize("day", [date(2024, 4, 10), date(2024, 4, 22), date(2024, 11, 5)])
def test_no_look_ahead_for_every_phase4_table(rederived, tmp_path, day):
    """Delete every phase 2/3 row after D, change every outcome on D, re-derive D: phase 4 for D
    is unchanged (only the pre-game facts of D are kept: the schedule, the roster, the lines)."""
    params, _ = rederived
    p, wh = fresh_copy(params, tmp_path, backfill_mode=True)
    try:
        before = {t: rows_on(wh, t, day) for t in PHASE4}
        assert all(len(f) for f in before.values())
        for t in RAW + PHASE3 + PHASE4:
            wh.execute(f"DELETE FROM {t} WHERE game_date > @d", {"d": day})
        wh.execute("""UPDATE nba_raw.bdl_player_boxscores SET points = 3 * points + 7, fgm = fgm + 5, fga = fga + 9,
                      fg3m = fg3m + 2, fg3a = fg3a + 4, ftm = ftm + 1, fta = fta + 1, minutes = '47:59', tov = tov + 3
                      WHERE game_date = @d""", {"d": day})
        wh.execute("""UPDATE nba_raw.nbac_gamebook_player_stats SET points = 3 * points + 7, minutes = minutes + 11
                      WHERE game_date = @d AND minutes IS NOT NULL""", {"d": day})
        wh.execute("UPDATE nba_raw.nbac_schedule SET home_score = 201, away_score = 7, periods = 7 WHERE game_date = @d",
                   {"d": day})
        for t in PHASE3[:3]:  # the outcomes already derived for D are wrong too
            col = "points" if t.endswith("player_game_summary") else "points_scored"
            wh.execute(f"UPDATE {t} SET {col} = {col} + 50 WHERE game_date = @d", {"d": day})
        result = run_derive(p, wh=wh, progress=False, dates=[day])
        assert result.ok, result.error
        assert rows_on(wh, "player_game_summary", day).points.mean() > 30  # D's outcomes did change
        for t in PHASE4:
            pd.testing.assert_frame_equal(rows_on(wh, t, day), before[t], check_dtype=False, obj=t)
    finally:
        wh.close()


def test_phase4_rows_are_the_pregame_players(derived):
    """Every player of the roster (inactive players excepted) gets a feature row, played or not."""
    params, _, _ = derived
    n = _read(params, """
        SELECT (SELECT COUNT(*) FROM nba_raw.nbac_gamebook_player_stats WHERE player_status <> 'inactive') AS roster,
               (SELECT COUNT(*) FROM nba_precompute.ml_feature_store_v2) AS features,
               (SELECT COUNT(*) FROM nba_precompute.player_daily_cache) AS cache""")
    assert n.roster[0] == n.features[0] == n.cache[0]


# -- hand-checked values -------------------------------------------------------------------------

def test_rolling_points_match_pandas(rederived):
    params, _ = rederived
    pgs = _read(params, "SELECT player_lookup, season_year, game_date, game_id, points, minutes "
                        "FROM nba_analytics.player_game_summary")
    cache = _read(params, "SELECT * FROM nba_precompute.player_daily_cache")
    pgs["game_date"] = pd.to_datetime(pgs.game_date).dt.date
    cache["game_date"] = pd.to_datetime(cache.game_date).dt.date
    rng = np.random.default_rng(0)
    picks = cache[cache.games_played_season >= 12].iloc[rng.choice(int((cache.games_played_season >= 12).sum()), 25, replace=False)]
    picks = pd.concat([picks, cache[cache.games_played_season.between(1, 3)].head(5), cache[cache.games_played_season == 0].head(3)])
    for r in picks.itertuples():
        prior = pgs[(pgs.player_lookup == r.player_lookup) & (pgs.season_year == r.season_year) & (pgs.game_date < r.game_date)]
        prior = prior.sort_values(["game_date", "game_id"])
        assert r.games_played_season == len(prior)
        assert r.games_used == min(10, len(prior))
        if prior.empty:
            assert pd.isna(r.points_avg_last_5) and pd.isna(r.points_avg_season)
            continue
        assert r.points_avg_last_5 == pytest.approx(prior.points.tail(5).mean(), abs=1e-4)
        assert r.points_avg_last_10 == pytest.approx(prior.points.tail(10).mean(), abs=1e-4)
        assert r.minutes_avg_last_10 == pytest.approx(prior.minutes.tail(10).mean(), abs=1e-4)
        assert r.points_avg_season == pytest.approx(prior.points.mean(), abs=1e-4)
        if len(prior) >= 2:
            assert r.points_std_season == pytest.approx(prior.points.std(ddof=1), abs=1e-4)
        else:
            assert pd.isna(r.points_std_season)


def test_team_defense_window_matches_pandas(rederived):
    params, _ = rederived
    tdgs = _read(params, "SELECT * FROM nba_analytics.team_defense_game_summary")
    tdza = _read(params, "SELECT * FROM nba_precompute.team_defense_zone_analysis")
    for f in (tdgs, tdza):
        f["game_date"] = pd.to_datetime(f.game_date).dt.date
    picks = pd.concat([tdza[tdza.games_used >= 5].sample(20, random_state=1), tdza[tdza.games_used == 0].head(3)])
    for r in picks.itertuples():
        lo, hi = r.game_date - timedelta(days=15), r.game_date - timedelta(days=1)
        window = tdgs[(tdgs.season_year == r.season_year) & (tdgs.game_date >= lo) & (tdgs.game_date <= hi)]
        own = window[window.team_abbr == r.team_abbr]
        assert r.games_used == len(own)
        if own.empty:
            assert pd.isna(r.defensive_rating) and pd.isna(r.def_rating_vs_league)
            continue
        assert r.defensive_rating == pytest.approx(100 * own.points_allowed.sum() / own.possessions.sum(), abs=1e-3)
        assert r.opp_points_per_game == pytest.approx(own.points_allowed.mean(), abs=1e-3)
        assert r.def_rating_vs_league == pytest.approx(own.points_allowed.mean() / window.points_allowed.mean(), abs=1e-3)
        fg3 = own.opp_fg3m.sum() / own.opp_fg3a.sum()
        assert r.opp_fg3_pct == pytest.approx(fg3, abs=1e-3)


def test_defensive_rating_of_a_game_by_hand(derived):
    params, _, _ = derived
    g = _read(params, "SELECT * FROM nba_analytics.team_defense_game_summary ORDER BY game_id, team_abbr LIMIT 1").iloc[0]
    box = _read(params, "SELECT * FROM nba_raw.bdl_player_boxscores WHERE game_id = @g", {"g": g.game_id})
    team = box.groupby("team_abbr")[["points", "fga", "fta", "oreb", "tov"]].sum()
    poss = 0.5 * sum(t.fga + 0.44 * t.fta - t.oreb + t.tov for t in team.itertuples())
    opp = team.drop(index=g.team_abbr).iloc[0]
    assert g.points_allowed == opp.points
    assert g.possessions == pytest.approx(poss, abs=0.01)
    assert g.defensive_rating == pytest.approx(100 * opp.points / poss, abs=0.01)


def test_matchup_factor_is_the_opponents_defense_vs_league(derived):
    params, _, _ = derived
    df = _read(params, """
        SELECT c.matchup_factor, z.def_rating_vs_league, z.games_used, f.matchup_factor AS feature
        FROM nba_precompute.player_composite_factors AS c
        JOIN nba_precompute.team_defense_zone_analysis AS z
          ON z.game_id = c.game_id AND z.team_abbr = c.opponent_team_abbr
        JOIN nba_precompute.ml_feature_store_v2 AS f ON f.game_id = c.game_id AND f.player_lookup = c.player_lookup""")
    assert len(df) and (df.matchup_factor.fillna(-1) == df.def_rating_vs_league.fillna(-1)).all()
    assert (df.feature.fillna(-1) == df.matchup_factor.fillna(-1)).all()
    settled = df[df.games_used >= 5].matchup_factor
    assert len(settled) and settled.between(0.7, 1.35).all() and abs(settled.mean() - 1) < 0.02


# -- player_game_summary: the merge ------------------------------------------------------------

def test_player_game_summary_merges_sources_by_priority(small_demo):
    """The before state: one game's bdl box score is missing, so its rows come from the gamebook."""
    params, built = small_demo
    (day, games), = built.holes.partial["bdl_player_boxscores"].items()
    pgs = _read(params, "SELECT * FROM nba_analytics.player_game_summary WHERE game_date = @d", {"d": day})
    assert set(pgs[pgs.game_id.isin(games)].primary_source) == {"gamebook"}
    assert set(pgs[~pgs.game_id.isin(games)].primary_source) == {"bdl"}
    gb = built.league.gamebook
    played = gb[gb.game_id.isin(games) & (gb.minutes > 0)]
    assert len(pgs[pgs.game_id.isin(games)]) == len(played)
    assert pgs[pgs.game_id.isin(games)].oreb.isna().all()


def test_player_game_summary_values(derived):
    params, built, _ = derived
    pgs = _read(params, "SELECT * FROM nba_analytics.player_game_summary WHERE game_date = '2024-04-10'")
    box = built.league.boxscores
    box = box[box.game_date == date(2024, 4, 10)].set_index(["game_id", "player_lookup"])
    props = built.league.props
    lines = props[props.game_date == date(2024, 4, 10)].groupby(["game_id", "player_lookup"]).points_line.median()
    sched = built.league.schedule.set_index("game_id")
    assert len(pgs) == len(box)
    for r in pgs.itertuples():
        b = box.loc[(r.game_id, r.player_lookup)]
        mm, ss = b.minutes.split(":")
        assert r.minutes == pytest.approx(int(mm) + int(ss) / 60, abs=0.006)
        assert r.points == b.points == 2 * r.fg2m + 3 * r.fg3m + r.ftm
        assert r.game_type == sched.at[r.game_id, "game_type"]
        assert r.is_home == (sched.at[r.game_id, "home_team"] == r.team_abbr)
        line = lines.get((r.game_id, r.player_lookup))
        if line is None:
            assert pd.isna(r.points_line) and pd.isna(r.over_under_result)
        else:
            assert r.points_line == line
            assert r.over_under_result == ("OVER" if r.points > line else "UNDER" if r.points < line else "PUSH")
    assert (pgs.primary_source == "bdl").all() and pgs.starter.sum() == 10 * pgs.game_id.nunique()
    # playoff dates get the schedule's game type
    po = _read(params, "SELECT DISTINCT game_type FROM nba_analytics.player_game_summary WHERE game_date >= '2024-04-20' "
                       "AND game_date <= '2024-05-05'")
    assert set(po.game_type) == {"playoffs"}


def test_upcoming_context_rest_days(derived):
    params, built, _ = derived
    ctx = _read(params, "SELECT DISTINCT game_id, game_date, season_year, team_abbr, days_rest, is_back_to_back, "
                        "games_last_7_days FROM nba_analytics.upcoming_player_game_context")
    s = built.league.schedule
    s = s[s.game_status == "final"]
    tg = pd.concat([s.assign(team_abbr=s.home_team), s.assign(team_abbr=s.away_team)])
    tg = tg.sort_values("game_date")
    ctx["game_date"] = pd.to_datetime(ctx.game_date).dt.date
    for r in ctx.sample(40, random_state=2).itertuples():
        before = tg[(tg.team_abbr == r.team_abbr) & (tg.season_year == r.season_year) & (tg.game_date < r.game_date)]
        if before.empty:
            assert pd.isna(r.days_rest) and not r.is_back_to_back
        else:
            assert r.days_rest == (r.game_date - before.game_date.max()).days
            assert r.is_back_to_back == (r.days_rest == 1)
        assert r.games_last_7_days == (before.game_date >= r.game_date - timedelta(days=7)).sum()
