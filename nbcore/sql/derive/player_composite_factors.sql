-- nba_precompute.player_composite_factors for the final games of [@start_date, @end_date].
-- One row per player per game on date D (the players of upcoming_player_game_context):
--   fatigue_score   a multiplier on expected scoring, 1 = fresh: -0.05 on the second night of a
--                   back-to-back, -0.01 per game beyond 3 in the previous 7 days, -0.01 per
--                   game beyond 6 on the player's roster in the previous 14 days.
--   matchup_factor  the opponent's points allowed per game over its previous 15 days relative
--                   to the league (team_defense_zone_analysis.def_rating_vs_league); NULL when
--                   the opponent has no games in the window yet.
--   pace_factor     mean of the two teams' recent pace relative to the league's.
--   shot_zone_mismatch  the player's points mix (last 10 games) times how much better than the
--                   league the opponent lets its opponents shoot 2s and 3s.
--   composite_adjustment  fatigue x matchup x pace (a missing factor counts as 1).
-- games_used = the player's games on a roster in the 14 days before D (the context lookback).
-- Everything comes from rows for D that were computed from games before D: no look-ahead.
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
WITH spine AS (
  SELECT game_id, game_date, season_year, player_lookup, team_abbr, opponent_team_abbr,
    days_rest, is_back_to_back, games_last_7_days
  FROM nba_analytics.upcoming_player_game_context
  WHERE game_date BETWEEN @start_date AND @end_date
    AND game_date IN UNNEST(@dates)
),
recent AS (
  SELECT s.game_id, s.player_lookup, COUNT(c.game_id) AS games_last_14_days
  FROM spine AS s
  LEFT JOIN nba_analytics.upcoming_player_game_context AS c
    ON c.player_lookup = s.player_lookup
    AND c.season_year = s.season_year
    AND c.game_date BETWEEN DATE_SUB(s.game_date, INTERVAL @lookback_days DAY) AND DATE_SUB(s.game_date, INTERVAL 1 DAY)
    AND c.game_date BETWEEN DATE_SUB(@start_date, INTERVAL @lookback_days DAY) AND DATE_SUB(@end_date, INTERVAL 1 DAY)
  GROUP BY s.game_id, s.player_lookup
),
defense AS (
  SELECT game_id, team_abbr, games_used, opp_fg2_pct, opp_fg3_pct, pace, def_rating_vs_league,
    league_pace, league_opp_fg2_pct, league_opp_fg3_pct
  FROM nba_precompute.team_defense_zone_analysis
  WHERE game_date BETWEEN @start_date AND @end_date
),
shots AS (
  SELECT game_id, player_lookup, pct_points_from_2, pct_points_from_3
  FROM nba_precompute.player_shot_zone_analysis
  WHERE game_date BETWEEN @start_date AND @end_date
),
factors AS (
  SELECT s.*,
    r.games_last_14_days,
    1.0
      - IF(s.is_back_to_back, 0.05, 0.0)
      - 0.01 * GREATEST(COALESCE(s.games_last_7_days, 0) - 3, 0)
      - 0.01 * GREATEST(r.games_last_14_days - 6, 0) AS fatigue_score,
    opp.def_rating_vs_league AS matchup_factor,
    SAFE_DIVIDE((own.pace + opp.pace) / 2, opp.league_pace) AS pace_factor,
    COALESCE(sh.pct_points_from_2, 0) * (SAFE_DIVIDE(opp.opp_fg2_pct, opp.league_opp_fg2_pct) - 1)
      + COALESCE(sh.pct_points_from_3, 0) * (SAFE_DIVIDE(opp.opp_fg3_pct, opp.league_opp_fg3_pct) - 1)
      AS shot_zone_mismatch
  FROM spine AS s
  JOIN recent AS r ON r.game_id = s.game_id AND r.player_lookup = s.player_lookup
  LEFT JOIN defense AS opp ON opp.game_id = s.game_id AND opp.team_abbr = s.opponent_team_abbr
  LEFT JOIN defense AS own ON own.game_id = s.game_id AND own.team_abbr = s.team_abbr
  LEFT JOIN shots AS sh ON sh.game_id = s.game_id AND sh.player_lookup = s.player_lookup
)
SELECT
  game_id,
  game_date,
  season_year,
  player_lookup,
  team_abbr,
  opponent_team_abbr,
  games_last_14_days AS games_used,
  ROUND(fatigue_score, 4) AS fatigue_score,
  ROUND(matchup_factor, 4) AS matchup_factor,
  ROUND(pace_factor, 4) AS pace_factor,
  ROUND(shot_zone_mismatch, 4) AS shot_zone_mismatch,
  ROUND(fatigue_score * COALESCE(matchup_factor, 1.0) * COALESCE(pace_factor, 1.0), 4) AS composite_adjustment,
  CURRENT_TIMESTAMP() AS processed_at
FROM factors
