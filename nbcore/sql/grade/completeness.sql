-- Grading completeness per season: graded / eligible. A prediction is eligible when its game is
-- final, unless the player is known not to have played (his game has box scores but he has no
-- row): those are voided, counted apart, never graded. Predictions for final games still
-- waiting for analytics are eligible (and ungraded), so a missing analytics date shows up.
-- A grade counts only while it matches the prediction and the actual points (not stale).
WITH preds AS (
  SELECT p.season_year, p.game_id, p.player_lookup, p.system_id, p.predicted_points, s.game_status
  FROM nba_predictions.player_prop_predictions AS p
  LEFT JOIN nba_raw.nbac_schedule AS s
    ON s.game_id = p.game_id AND s.game_date BETWEEN @start_date AND @end_date
  WHERE p.game_date BETWEEN @start_date AND @end_date
    AND p.season_year IN UNNEST(@seasons)
),
box_games AS (
  SELECT DISTINCT game_id
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date
),
played AS (
  SELECT game_id, player_lookup, points
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date
),
acc AS (
  SELECT game_id, player_lookup, system_id, predicted_points, actual_points, is_voided
  FROM nba_predictions.prediction_accuracy
  WHERE game_date BETWEEN @start_date AND @end_date
),
per_prediction AS (
  SELECT
    p.season_year,
    COALESCE(p.game_status = 'final', FALSE) AS is_final,
    b.game_id IS NOT NULL AS has_box,
    pl.player_lookup IS NOT NULL AS played,
    COALESCE(a.game_id IS NOT NULL AND NOT a.is_voided AND a.predicted_points = p.predicted_points
             AND a.actual_points = pl.points, FALSE) AS graded,
    COALESCE(a.is_voided, FALSE) AS voided_recorded
  FROM preds AS p
  LEFT JOIN box_games AS b ON b.game_id = p.game_id
  LEFT JOIN played AS pl ON pl.game_id = p.game_id AND pl.player_lookup = p.player_lookup
  LEFT JOIN acc AS a ON a.game_id = p.game_id AND a.player_lookup = p.player_lookup AND a.system_id = p.system_id
)
SELECT
  season_year,
  COUNT(*) AS predictions,
  COUNTIF(NOT is_final) AS not_final,
  COUNTIF(is_final AND NOT has_box) AS awaiting_analytics,
  COUNTIF(is_final AND has_box AND NOT played) AS voided,
  COUNTIF(is_final AND has_box AND NOT played AND voided_recorded) AS voided_recorded,
  COUNTIF(is_final AND NOT (has_box AND NOT played)) AS eligible,
  COUNTIF(is_final AND has_box AND played AND graded) AS graded
FROM per_prediction
GROUP BY season_year
ORDER BY season_year
