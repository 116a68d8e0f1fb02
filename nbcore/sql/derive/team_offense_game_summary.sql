-- nba_analytics.team_offense_game_summary for the final games played in [@start_date, @end_date].
-- One row per team per game: the team's own offense, summed from player_game_summary (so the
-- box-score source priority applies here too). Possessions use the standard estimate
-- FGA + 0.44 FTA - OREB + TOV, averaged over both teams; when a team's rows come from the
-- gamebook (no offensive rebounds) OREB is estimated as a quarter of its rebounds.
-- pace = possessions per 48 minutes; offensive_rating = points per 100 possessions.
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
WITH games AS (
  SELECT game_id, game_date, season_year, game_type, home_team, away_team, periods
  FROM nba_raw.nbac_schedule
  WHERE game_date BETWEEN @start_date AND @end_date
    AND game_date IN UNNEST(@dates)
    AND game_status = 'final'
),
team AS (
  SELECT game_id, team_abbr,
    SUM(points) AS points, SUM(fgm) AS fgm, SUM(fga) AS fga, SUM(fg3m) AS fg3m, SUM(fg3a) AS fg3a,
    SUM(ftm) AS ftm, SUM(fta) AS fta,
    CAST(ROUND(SUM(COALESCE(oreb, 0.25 * reb))) AS INT64) AS oreb,
    SUM(tov) AS tov
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date
  GROUP BY game_id, team_abbr
),
both_sides AS (
  SELECT t.*, o.points AS opp_points,
    0.5 * ((t.fga + 0.44 * t.fta - t.oreb + t.tov) + (o.fga + 0.44 * o.fta - o.oreb + o.tov)) AS possessions
  FROM team AS t
  JOIN team AS o ON o.game_id = t.game_id AND o.team_abbr <> t.team_abbr
)
SELECT
  g.game_id,
  g.game_date,
  g.season_year,
  g.game_type,
  b.team_abbr,
  IF(b.team_abbr = g.home_team, g.away_team, g.home_team) AS opponent_team_abbr,
  b.team_abbr = g.home_team AS is_home,
  g.periods,
  b.points AS points_scored,
  b.opp_points AS points_allowed,
  b.fgm,
  b.fga,
  b.fg3m,
  b.fg3a,
  b.ftm,
  b.fta,
  b.oreb,
  b.tov,
  ROUND(b.possessions, 2) AS possessions,
  ROUND(48 * b.possessions / (48 + 5 * (COALESCE(g.periods, 4) - 4)), 2) AS pace,
  ROUND(SAFE_DIVIDE(100 * b.points, b.possessions), 2) AS offensive_rating,
  CURRENT_TIMESTAMP() AS processed_at
FROM both_sides AS b
JOIN games AS g ON g.game_id = b.game_id
