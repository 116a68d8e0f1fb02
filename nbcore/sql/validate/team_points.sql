-- Reconciliation: per game and team, the players' points add up to the schedule's final score.
-- Only games a table has rows for are compared (a game without rows is a completeness gap);
-- a team without rows in such a game counts 0 points. Returns the teams that do not add up.
WITH games AS (
  SELECT game_id, game_date, season_year, home_team, away_team, home_score, away_score
  FROM nba_raw.nbac_schedule
  WHERE game_status = 'final' AND game_date BETWEEN @start_date AND @end_date
),
teams AS (
  SELECT game_id, game_date, season_year, home_team AS team_abbr, home_score AS final_points FROM games
  UNION ALL
  SELECT game_id, game_date, season_year, away_team, away_score FROM games
),
player_points AS (
  SELECT 'bdl_player_boxscores' AS table_name, game_id, team_abbr, SUM(points) AS points
  FROM nba_raw.bdl_player_boxscores
  WHERE game_date BETWEEN @start_date AND @end_date
  GROUP BY game_id, team_abbr
  UNION ALL
  SELECT 'nbac_gamebook_player_stats', game_id, team_abbr, SUM(points)
  FROM nba_raw.nbac_gamebook_player_stats
  WHERE game_date BETWEEN @start_date AND @end_date AND player_status = 'active'
  GROUP BY game_id, team_abbr
  UNION ALL
  SELECT 'player_game_summary', game_id, team_abbr, SUM(points)
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date
  GROUP BY game_id, team_abbr
),
present AS (
  SELECT DISTINCT table_name, game_id FROM player_points
)
SELECT p.table_name, t.game_id, t.game_date, t.season_year, t.team_abbr, t.final_points,
  COALESCE(pp.points, 0) AS player_points
FROM present AS p
JOIN teams AS t ON t.game_id = p.game_id
LEFT JOIN player_points AS pp
  ON pp.table_name = p.table_name AND pp.game_id = t.game_id AND pp.team_abbr = t.team_abbr
WHERE t.final_points IS NOT NULL AND COALESCE(pp.points, 0) != t.final_points
ORDER BY p.table_name, t.game_date, t.game_id, t.team_abbr
