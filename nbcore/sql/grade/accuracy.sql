-- Grades of the predictions on @dates whose game is final and has box scores in analytics.
-- A player with a player_game_summary row played: his prediction is graded. A player without
-- one (DNP, inactive, or simply absent from the box score) is voided: written with
-- is_voided = TRUE and no error, so it is never counted as a miss. was_correct is NULL for a
-- PASS, for a push (actual points equal to the line) and for a voided row.
-- Games not final, or without any box-score row yet, are not eligible and get no row.
WITH final_games AS (
  SELECT game_id
  FROM nba_raw.nbac_schedule
  WHERE game_date IN UNNEST(@dates) AND game_status = 'final'
),
box_games AS (
  SELECT DISTINCT game_id
  FROM nba_analytics.player_game_summary
  WHERE game_date IN UNNEST(@dates)
),
played AS (
  SELECT game_id, player_lookup, points
  FROM nba_analytics.player_game_summary
  WHERE game_date IN UNNEST(@dates)
),
gamebook AS (
  SELECT game_id, player_lookup, MAX(player_status) AS player_status, MAX(dnp_reason) AS dnp_reason
  FROM nba_raw.nbac_gamebook_player_stats
  WHERE game_date IN UNNEST(@dates)
  GROUP BY game_id, player_lookup
),
graded AS (
  SELECT
    p.game_id, p.game_date, p.season_year, p.game_type, p.player_lookup, p.system_id,
    p.predicted_points, p.points_line, p.recommendation, p.confidence,
    a.points AS actual_points,
    g.player_status, g.dnp_reason
  FROM nba_predictions.player_prop_predictions AS p
  JOIN final_games AS f ON f.game_id = p.game_id
  JOIN box_games AS b ON b.game_id = p.game_id
  LEFT JOIN played AS a ON a.game_id = p.game_id AND a.player_lookup = p.player_lookup
  LEFT JOIN gamebook AS g ON g.game_id = p.game_id AND g.player_lookup = p.player_lookup
  WHERE p.game_date IN UNNEST(@dates)
)
SELECT
  game_id, game_date, season_year, game_type, player_lookup, system_id,
  predicted_points, points_line, recommendation, confidence,
  actual_points,
  ABS(predicted_points - actual_points) AS absolute_error,
  predicted_points - actual_points AS signed_error,
  CASE
    WHEN actual_points IS NULL OR points_line IS NULL OR recommendation NOT IN ('OVER', 'UNDER') THEN NULL
    WHEN actual_points = points_line THEN NULL
    WHEN recommendation = 'OVER' THEN actual_points > points_line
    ELSE actual_points < points_line
  END AS was_correct,
  CASE WHEN actual_points IS NULL OR points_line IS NULL THEN NULL ELSE actual_points = points_line END AS is_push,
  ABS(predicted_points - actual_points) <= 3 AS within_3,
  ABS(predicted_points - actual_points) <= 5 AS within_5,
  actual_points IS NULL AS is_voided,
  CASE
    WHEN actual_points IS NOT NULL THEN NULL
    WHEN player_status IN ('dnp', 'inactive') THEN CONCAT(player_status, ': ', COALESCE(dnp_reason, 'no reason given'))
    WHEN player_status IS NULL THEN 'not on the gamebook'
    ELSE 'no box-score row'
  END AS void_reason,
  CURRENT_TIMESTAMP() AS graded_at
FROM graded
