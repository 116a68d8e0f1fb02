-- nba_analytics.team_defense_game_summary for the final games played in [@start_date, @end_date].
-- One row per team per game: what the opponent did against this team, read from the
-- opponent's row of team_offense_game_summary (same possessions and pace for both sides).
-- defensive_rating = points allowed per 100 possessions.
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
SELECT
  t.game_id,
  t.game_date,
  t.season_year,
  t.game_type,
  t.team_abbr,
  t.opponent_team_abbr,
  t.is_home,
  o.points_scored AS points_allowed,
  t.points_scored AS points_scored,
  o.fgm - o.fg3m AS opp_fg2m,
  o.fga - o.fg3a AS opp_fg2a,
  o.fg3m AS opp_fg3m,
  o.fg3a AS opp_fg3a,
  o.ftm AS opp_ftm,
  o.fta AS opp_fta,
  ROUND(SAFE_DIVIDE(o.fgm - o.fg3m, o.fga - o.fg3a), 4) AS opp_fg2_pct,
  ROUND(SAFE_DIVIDE(o.fg3m, o.fg3a), 4) AS opp_fg3_pct,
  ROUND(SAFE_DIVIDE(o.ftm, o.fta), 4) AS opp_ft_pct,
  t.possessions,
  t.pace,
  ROUND(SAFE_DIVIDE(100 * o.points_scored, t.possessions), 2) AS defensive_rating,
  CURRENT_TIMESTAMP() AS processed_at
FROM nba_analytics.team_offense_game_summary AS t
JOIN nba_analytics.team_offense_game_summary AS o
  ON o.game_id = t.game_id AND o.team_abbr <> t.team_abbr
WHERE t.game_date BETWEEN @start_date AND @end_date
  AND t.game_date IN UNNEST(@dates)
  AND o.game_date BETWEEN @start_date AND @end_date
