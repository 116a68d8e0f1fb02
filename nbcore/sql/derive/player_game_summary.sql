-- nba_analytics.player_game_summary for the final games played in [@start_date, @end_date].
-- One row per player per game who played (appears in the box score; see `played`).
-- Source priority: 1 = nba_raw.bdl_player_boxscores ("MM:SS" minutes turned into a number),
-- 2 = nba_raw.nbac_gamebook_player_stats, used only for a game/player bdl does not have
-- (primary_source says which one each row came from). Game type, home/away and opponent come
-- from the schedule; the starter flag from the gamebook (bdl does not publish it).
-- points_line is the consensus (median across bookmakers) of the posted player points lines.
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
WITH games AS (
  SELECT game_id, game_date, season_year, game_type, home_team, away_team
  FROM nba_raw.nbac_schedule
  WHERE game_date BETWEEN @start_date AND @end_date
    AND game_date IN UNNEST(@dates)
    AND game_status = 'final'
),
gamebook AS (
  SELECT game_id, player_lookup, player_id, player_name, team_abbr, player_status, starter,
    minutes, points, fgm, fga, fg3m, fg3a, ftm, fta, reb, ast, stl, blk, tov
  FROM nba_raw.nbac_gamebook_player_stats
  WHERE game_date BETWEEN @start_date AND @end_date
),
bdl AS (
  SELECT game_id, player_lookup, player_id, player_name, team_abbr,
    ROUND(SAFE_CAST(SPLIT(minutes, ':')[SAFE_OFFSET(0)] AS INT64)
      + SAFE_CAST(SPLIT(minutes, ':')[SAFE_OFFSET(1)] AS INT64) / 60.0, 2) AS minutes,
    points, fgm, fga, fg3m, fg3a, ftm, fta, oreb, reb, ast, stl, blk, tov
  FROM nba_raw.bdl_player_boxscores
  WHERE game_date BETWEEN @start_date AND @end_date
),
merged AS (
  SELECT b.game_id, b.player_lookup, b.player_id, b.player_name, b.team_abbr, g.starter,
    b.minutes, b.points, b.fgm, b.fga, b.fg3m, b.fg3a, b.ftm, b.fta, b.oreb, b.reb, b.ast, b.stl,
    b.blk, b.tov, 'bdl' AS primary_source
  FROM bdl AS b
  LEFT JOIN gamebook AS g ON g.game_id = b.game_id AND g.player_lookup = b.player_lookup
  UNION ALL
  SELECT g.game_id, g.player_lookup, g.player_id, g.player_name, g.team_abbr, g.starter,
    g.minutes, g.points, g.fgm, g.fga, g.fg3m, g.fg3a, g.ftm, g.fta, CAST(NULL AS INT64) AS oreb, g.reb,
    g.ast, g.stl, g.blk, g.tov, 'gamebook' AS primary_source
  FROM gamebook AS g
  WHERE g.player_status = 'active'
    AND NOT EXISTS (
      SELECT 1 FROM bdl AS b WHERE b.game_id = g.game_id AND b.player_lookup = g.player_lookup
    )
),
book_lines AS (
  SELECT game_id, player_lookup, points_line,
    ROW_NUMBER() OVER (PARTITION BY game_id, player_lookup ORDER BY points_line, bookmaker) AS rn,
    COUNT(*) OVER (PARTITION BY game_id, player_lookup) AS n
  FROM nba_raw.odds_api_player_points_props
  WHERE game_date BETWEEN @start_date AND @end_date
    AND points_line IS NOT NULL
),
lines AS (
  -- the median: the middle row (odd count) or the mean of the two middle rows (even count)
  SELECT game_id, player_lookup, AVG(points_line) AS points_line
  FROM book_lines
  WHERE 2 * rn BETWEEN n AND n + 2
  GROUP BY game_id, player_lookup
),
played AS (
  SELECT m.*,
    -- NUMERIC sums are exact: the result never depends on the order rows are added in
    SUM(CAST(m.minutes AS NUMERIC)) OVER (PARTITION BY m.game_id, m.team_abbr) AS team_minutes,
    SUM(CAST(m.fga + 0.44 * m.fta + m.tov AS NUMERIC)) OVER (PARTITION BY m.game_id, m.team_abbr) AS team_plays
  FROM merged AS m
  -- A player who appears in the box score played. Minutes are rounded to whole minutes, so a
  -- few seconds on the floor is 0:00 and can still score: a row is left out only when it has
  -- no minutes, no numbers, and the gamebook says the player did not play (a DNP listing).
  WHERE m.minutes > 0
    OR COALESCE(m.points + m.fga + m.fta + m.reb + m.ast + m.stl + m.blk + m.tov, 0) > 0
    OR NOT EXISTS (
      SELECT 1 FROM gamebook AS g
      WHERE g.game_id = m.game_id AND g.player_lookup = m.player_lookup AND g.player_status != 'active'
    )
)
SELECT
  p.game_id,
  s.game_date,
  s.season_year,
  s.game_type,
  p.player_lookup,
  p.player_id,
  p.player_name,
  p.team_abbr,
  IF(p.team_abbr = s.home_team, s.away_team, s.home_team) AS opponent_team_abbr,
  p.team_abbr = s.home_team AS is_home,
  COALESCE(p.starter, FALSE) AS starter,
  CAST(p.minutes AS FLOAT64) AS minutes,
  p.points,
  p.fgm,
  p.fga,
  p.fgm - p.fg3m AS fg2m,
  p.fga - p.fg3a AS fg2a,
  p.fg3m,
  p.fg3a,
  p.ftm,
  p.fta,
  p.oreb,
  p.reb,
  p.ast,
  p.stl,
  p.blk,
  p.tov,
  ROUND(SAFE_DIVIDE(p.fgm, p.fga), 4) AS fg_pct,
  ROUND(SAFE_DIVIDE(p.fg3m, p.fg3a), 4) AS fg3_pct,
  ROUND(SAFE_DIVIDE(p.ftm, p.fta), 4) AS ft_pct,
  ROUND(SAFE_DIVIDE(p.points, 2 * (p.fga + 0.44 * p.fta)), 4) AS ts_pct,
  -- share of the team's plays (FGA + 0.44 FTA + TOV) used while on the floor, in percent
  ROUND(SAFE_DIVIDE(100 * (p.fga + 0.44 * p.fta + p.tov) * CAST(p.team_minutes / 5 AS FLOAT64),
    p.minutes * CAST(p.team_plays AS FLOAT64)), 2) AS usage_proxy,
  p.primary_source,
  l.points_line,
  CASE
    WHEN l.points_line IS NULL THEN NULL
    WHEN p.points > l.points_line THEN 'OVER'
    WHEN p.points < l.points_line THEN 'UNDER'
    ELSE 'PUSH'
  END AS over_under_result,
  CURRENT_TIMESTAMP() AS processed_at
FROM played AS p
JOIN games AS s ON s.game_id = p.game_id
LEFT JOIN lines AS l ON l.game_id = p.game_id AND l.player_lookup = p.player_lookup
