-- Reconciliation across phases 2 and 3, per game that phase 3 has rows for: the player-game rows
-- phase 2 holds (every player who appears in the box score: bdl rows, plus gamebook players
-- listed active that bdl lacks; a bdl row with no minutes, no numbers and a gamebook DNP listing
-- is not an appearance) against player_game_summary's rows, and two rows per game (one per
-- team) in each team summary.
WITH gamebook AS (
  SELECT game_id, player_lookup, player_status
  FROM nba_raw.nbac_gamebook_player_stats
  WHERE game_date BETWEEN @start_date AND @end_date
),
bdl AS (
  SELECT b.game_id, b.player_lookup
  FROM nba_raw.bdl_player_boxscores AS b
  WHERE b.game_date BETWEEN @start_date AND @end_date
    AND (SAFE_CAST(SPLIT(b.minutes, ':')[SAFE_OFFSET(0)] AS INT64) > 0
      OR SAFE_CAST(SPLIT(b.minutes, ':')[SAFE_OFFSET(1)] AS INT64) > 0
      OR COALESCE(b.points + b.fga + b.fta + b.reb + b.ast + b.stl + b.blk + b.tov, 0) > 0
      OR NOT EXISTS (
        SELECT 1 FROM gamebook AS g
        WHERE g.game_id = b.game_id AND g.player_lookup = b.player_lookup AND g.player_status != 'active'
      ))
),
appearances AS (
  SELECT game_id, player_lookup FROM bdl
  UNION DISTINCT
  SELECT game_id, player_lookup FROM gamebook WHERE player_status = 'active'
),
phase2 AS (
  SELECT game_id, COUNT(*) AS rows_phase2 FROM appearances GROUP BY game_id
),
summary AS (
  SELECT game_id, ANY_VALUE(game_date) AS game_date, COUNT(*) AS rows_summary
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date
  GROUP BY game_id
),
offense AS (
  SELECT game_id, COUNT(*) AS team_rows FROM nba_analytics.team_offense_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date GROUP BY game_id
),
defense AS (
  SELECT game_id, COUNT(*) AS team_rows FROM nba_analytics.team_defense_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date GROUP BY game_id
)
SELECT s.game_id, s.game_date, COALESCE(p.rows_phase2, 0) AS rows_phase2, s.rows_summary,
  COALESCE(o.team_rows, 0) AS offense_rows, COALESCE(d.team_rows, 0) AS defense_rows
FROM summary AS s
LEFT JOIN phase2 AS p ON p.game_id = s.game_id
LEFT JOIN offense AS o ON o.game_id = s.game_id
LEFT JOIN defense AS d ON d.game_id = s.game_id
ORDER BY s.game_date, s.game_id
