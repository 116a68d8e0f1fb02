-- nba_precompute.player_shot_zone_analysis for the final games of [@start_date, @end_date].
-- One row per player per game on date D (the players of upcoming_player_game_context): the
-- player's shot mix over his last 10 games of the season played before D (no look-ahead).
-- games_used = how many games the window held (0 at the player's first game of a season).
-- Set-based: a running window over each player's games gives the last-10 totals as of every
-- game; each context row takes the totals as of the player's latest game before D.
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
WITH spine AS (
  SELECT game_id, game_date, season_year, player_lookup, team_abbr
  FROM nba_analytics.upcoming_player_game_context
  WHERE game_date BETWEEN @start_date AND @end_date
    AND game_date IN UNNEST(@dates)
),
games AS (
  -- a season lasts less than a year: @lookback_season_days (366) days back reaches every earlier
  -- game of its season; w10 is the last @lookback_games games (frame offset = N - 1)
  SELECT player_lookup, season_year, game_date, game_id,
    ROW_NUMBER() OVER w AS game_number,
    SUM(fg2a) OVER w10 AS fg2a, SUM(fg3a) OVER w10 AS fg3a, SUM(fta) OVER w10 AS fta,
    SUM(fg2m) OVER w10 AS fg2m, SUM(fg3m) OVER w10 AS fg3m, SUM(ftm) OVER w10 AS ftm,
    SUM(points) OVER w10 AS points
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN DATE_SUB(@start_date, INTERVAL @lookback_season_days DAY) AND DATE_SUB(@end_date, INTERVAL 1 DAY)
    -- only the windows some spine row reads (windows are per player and season: dropping whole
    -- partitions changes no value; a date-by-date chunk reads a few hundred players, not every one)
    AND player_lookup IN (SELECT player_lookup FROM spine)
    AND season_year IN (SELECT season_year FROM spine)
  WINDOW
    w AS (PARTITION BY player_lookup, season_year ORDER BY game_date, game_id),
    w10 AS (PARTITION BY player_lookup, season_year ORDER BY game_date, game_id ROWS BETWEEN @lookback_games_preceding PRECEDING AND CURRENT ROW)
),
stream AS (
  -- context rows and played games in one ordered stream per player and season; on the same
  -- date the context row sorts first, so the running maximum is the last game before D
  SELECT player_lookup, season_year, game_date, 0 AS is_game, game_id, CAST(NULL AS INT64) AS game_number
  FROM spine
  UNION ALL
  SELECT player_lookup, season_year, game_date, 1 AS is_game, game_id, game_number
  FROM games
),
as_of AS (
  SELECT player_lookup, season_year, game_id, game_date, is_game,
    MAX(game_number) OVER (
      PARTITION BY player_lookup, season_year ORDER BY game_date, is_game, game_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_game_number
  FROM stream
)
SELECT
  s.game_id,
  s.game_date,
  s.season_year,
  s.player_lookup,
  s.team_abbr,
  COALESCE(LEAST(a.last_game_number, @lookback_games), 0) AS games_used,
  ROUND(g.fg2a / LEAST(a.last_game_number, @lookback_games), 4) AS fg2a_per_game,
  ROUND(g.fg3a / LEAST(a.last_game_number, @lookback_games), 4) AS fg3a_per_game,
  ROUND(g.fta / LEAST(a.last_game_number, @lookback_games), 4) AS fta_per_game,
  ROUND(SAFE_DIVIDE(g.fg2m, g.fg2a), 4) AS fg2_pct,
  ROUND(SAFE_DIVIDE(g.fg3m, g.fg3a), 4) AS fg3_pct,
  ROUND(SAFE_DIVIDE(g.ftm, g.fta), 4) AS ft_pct,
  ROUND(SAFE_DIVIDE(2 * g.fg2m, g.points), 4) AS pct_points_from_2,
  ROUND(SAFE_DIVIDE(3 * g.fg3m, g.points), 4) AS pct_points_from_3,
  ROUND(SAFE_DIVIDE(g.ftm, g.points), 4) AS pct_points_from_ft,
  CURRENT_TIMESTAMP() AS processed_at
FROM spine AS s
JOIN as_of AS a
  ON a.game_id = s.game_id AND a.player_lookup = s.player_lookup AND a.is_game = 0
LEFT JOIN games AS g
  ON g.player_lookup = s.player_lookup AND g.season_year = s.season_year
  AND g.game_number = a.last_game_number
