-- nba_precompute.player_daily_cache for the final games of [@start_date, @end_date].
-- One row per player per game on date D (the players of upcoming_player_game_context): his
-- points and minutes over his last 5 and 10 games of the season before D, his season average
-- and spread (sample standard deviation) before D. No look-ahead: only games before D count.
-- games_used = games in the 10-game window; games_played_season = games before D this season.
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
WITH spine AS (
  SELECT game_id, game_date, season_year, player_lookup, team_abbr
  FROM nba_analytics.upcoming_player_game_context
  WHERE game_date BETWEEN @start_date AND @end_date
    AND game_date IN UNNEST(@dates)
),
games AS (
  -- a season lasts less than a year: @lookback_season_days (366) days back reaches every earlier
  -- game of its season; last 5 / last 10 are @lookback_short_games / @lookback_games rows
  -- (a frame offset is N - 1: BigQuery takes only a literal or a bare parameter there)
  SELECT player_lookup, season_year, game_date, game_id,
    ROW_NUMBER() OVER w AS game_number,
    AVG(points) OVER (w ROWS BETWEEN @lookback_short_games_preceding PRECEDING AND CURRENT ROW) AS points_avg_last_5,
    AVG(points) OVER (w ROWS BETWEEN @lookback_games_preceding PRECEDING AND CURRENT ROW) AS points_avg_last_10,
    -- exact sums (integers, NUMERIC minutes): a value never depends on how a window is added up
    AVG(CAST(minutes AS NUMERIC)) OVER (w ROWS BETWEEN @lookback_short_games_preceding PRECEDING AND CURRENT ROW) AS minutes_avg_last_5,
    AVG(CAST(minutes AS NUMERIC)) OVER (w ROWS BETWEEN @lookback_games_preceding PRECEDING AND CURRENT ROW) AS minutes_avg_last_10,
    AVG(points) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS points_avg_season,
    SUM(points) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS points_sum,
    SUM(points * points) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS points_sum_sq
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN DATE_SUB(@start_date, INTERVAL @lookback_season_days DAY) AND DATE_SUB(@end_date, INTERVAL 1 DAY)
    -- only the windows some spine row reads (windows are per player and season: dropping whole
    -- partitions changes no value; a date-by-date chunk reads a few hundred players, not every one)
    AND player_lookup IN (SELECT player_lookup FROM spine)
    AND season_year IN (SELECT season_year FROM spine)
  WINDOW w AS (PARTITION BY player_lookup, season_year ORDER BY game_date, game_id)
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
  COALESCE(a.last_game_number, 0) AS games_played_season,
  ROUND(g.points_avg_last_5, 4) AS points_avg_last_5,
  ROUND(g.points_avg_last_10, 4) AS points_avg_last_10,
  ROUND(CAST(g.minutes_avg_last_5 AS FLOAT64), 4) AS minutes_avg_last_5,
  ROUND(CAST(g.minutes_avg_last_10 AS FLOAT64), 4) AS minutes_avg_last_10,
  ROUND(g.points_avg_season, 4) AS points_avg_season,
  -- the sample standard deviation from exact sums (NULL with fewer than two games)
  ROUND(SQRT(GREATEST(SAFE_DIVIDE(g.points_sum_sq - g.points_sum * g.points_sum / g.game_number,
    g.game_number - 1), 0)), 4) AS points_std_season,
  CURRENT_TIMESTAMP() AS processed_at
FROM spine AS s
JOIN as_of AS a
  ON a.game_id = s.game_id AND a.player_lookup = s.player_lookup AND a.is_game = 0
LEFT JOIN games AS g
  ON g.player_lookup = s.player_lookup AND g.season_year = s.season_year
  AND g.game_number = a.last_game_number
