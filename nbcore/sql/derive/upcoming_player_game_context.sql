-- nba_analytics.upcoming_player_game_context for the final games of [@start_date, @end_date].
-- One row per player per game as known before tip-off: every player on the game's roster who
-- was not on the inactive list (the gamebook's roster, DNP-coach's-decision players included),
-- the team's schedule before the game (days of rest, back-to-back, games in the previous 7
-- days, counted within the season; NULL rest before a season's first game) and the consensus
-- points line (median across bookmakers) if one was posted. Nothing from the game's result.
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
WITH team_games AS (
  -- every team's games (both sides of each game), reaching back far enough for rest counts
  SELECT game_id, game_date, season_year, game_type, game_status, home_team AS team_abbr,
    away_team AS opponent_team_abbr, TRUE AS is_home
  FROM nba_raw.nbac_schedule
  WHERE game_date BETWEEN DATE_SUB(@start_date, INTERVAL @lookback_schedule_days DAY) AND @end_date
  UNION ALL
  SELECT game_id, game_date, season_year, game_type, game_status, away_team AS team_abbr,
    home_team AS opponent_team_abbr, FALSE AS is_home
  FROM nba_raw.nbac_schedule
  WHERE game_date BETWEEN DATE_SUB(@start_date, INTERVAL @lookback_schedule_days DAY) AND @end_date
),
team_rest AS (
  SELECT tg.*,
    DATE_DIFF(tg.game_date,
      LAG(tg.game_date) OVER (PARTITION BY tg.team_abbr, tg.season_year ORDER BY tg.game_date, tg.game_id),
      DAY) AS days_rest,
    COUNT(*) OVER (
      PARTITION BY tg.team_abbr, tg.season_year ORDER BY UNIX_DATE(tg.game_date)
      RANGE BETWEEN @lookback_recent_days PRECEDING AND 1 PRECEDING) AS games_last_7_days
  FROM team_games AS tg
),
roster AS (
  SELECT game_id, player_lookup, player_name, team_abbr
  FROM nba_raw.nbac_gamebook_player_stats
  WHERE game_date BETWEEN @start_date AND @end_date
    AND player_status <> 'inactive'
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
  SELECT game_id, player_lookup, AVG(points_line) AS points_line
  FROM book_lines
  WHERE 2 * rn BETWEEN n AND n + 2
  GROUP BY game_id, player_lookup
)
SELECT
  r.game_id,
  t.game_date,
  t.season_year,
  t.game_type,
  r.player_lookup,
  r.player_name,
  r.team_abbr,
  t.opponent_team_abbr,
  t.is_home,
  t.days_rest,
  COALESCE(t.days_rest = 1, FALSE) AS is_back_to_back,
  t.games_last_7_days,
  l.points_line,
  CURRENT_TIMESTAMP() AS processed_at
FROM roster AS r
JOIN team_rest AS t ON t.game_id = r.game_id AND t.team_abbr = r.team_abbr
LEFT JOIN lines AS l ON l.game_id = r.game_id AND l.player_lookup = r.player_lookup
WHERE t.game_date BETWEEN @start_date AND @end_date
  AND t.game_date IN UNNEST(@dates)
  AND t.game_status = 'final'
