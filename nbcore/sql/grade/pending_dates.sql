-- Work list of the grade stage: per game date in scope, the predictions and how many of them
-- are eligible (game final, box scores in analytics), not final, or waiting for analytics,
-- and how many eligible ones lack a current grade: no accuracy row, or one that no longer
-- matches the prediction or the actual points (a re-prediction or an analytics backfill since).
-- Accuracy rows without a prediction any more (orphans) also put their date on the list.
WITH preds AS (
  SELECT p.game_id, p.game_date, p.player_lookup, p.system_id, p.predicted_points, p.points_line,
         p.recommendation, s.game_status
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
  SELECT game_id, game_date, player_lookup, system_id, predicted_points, points_line, recommendation,
         actual_points, is_voided
  FROM nba_predictions.prediction_accuracy
  WHERE game_date BETWEEN @start_date AND @end_date
    AND season_year IN UNNEST(@seasons)
),
per_prediction AS (
  SELECT
    p.game_date,
    p.game_status = 'final' AS is_final,
    b.game_id IS NOT NULL AS has_box,
    a.game_id IS NOT NULL AS has_grade,
    (a.game_id IS NULL
      OR a.predicted_points IS DISTINCT FROM p.predicted_points
      OR a.points_line IS DISTINCT FROM p.points_line
      OR a.recommendation IS DISTINCT FROM p.recommendation
      OR a.actual_points IS DISTINCT FROM pl.points) AS stale
  FROM preds AS p
  LEFT JOIN box_games AS b ON b.game_id = p.game_id
  LEFT JOIN played AS pl ON pl.game_id = p.game_id AND pl.player_lookup = p.player_lookup
  LEFT JOIN acc AS a
    ON a.game_id = p.game_id AND a.player_lookup = p.player_lookup AND a.system_id = p.system_id
),
orphans AS (
  SELECT a.game_date, COUNT(*) AS orphan_grades
  FROM acc AS a
  LEFT JOIN preds AS p
    ON p.game_id = a.game_id AND p.player_lookup = a.player_lookup AND p.system_id = a.system_id
  LEFT JOIN box_games AS b ON b.game_id = a.game_id
  WHERE p.game_id IS NULL OR p.game_status IS DISTINCT FROM 'final' OR b.game_id IS NULL
  GROUP BY a.game_date
),
per_date AS (
  SELECT
    game_date,
    COUNT(*) AS predictions,
    COUNTIF(is_final AND has_box) AS eligible,
    COUNTIF(NOT COALESCE(is_final, FALSE)) AS not_final,
    COUNTIF(is_final AND NOT has_box) AS awaiting_analytics,
    COUNTIF(is_final AND has_box AND NOT stale) AS current_grades,
    COUNTIF(is_final AND has_box AND stale) AS ungraded
  FROM per_prediction
  GROUP BY game_date
)
SELECT
  COALESCE(d.game_date, o.game_date) AS game_date,
  COALESCE(d.predictions, 0) AS predictions,
  COALESCE(d.eligible, 0) AS eligible,
  COALESCE(d.not_final, 0) AS not_final,
  COALESCE(d.awaiting_analytics, 0) AS awaiting_analytics,
  COALESCE(d.current_grades, 0) AS current_grades,
  COALESCE(d.ungraded, 0) AS ungraded,
  COALESCE(o.orphan_grades, 0) AS orphan_grades
FROM per_date AS d
FULL OUTER JOIN orphans AS o ON o.game_date = d.game_date
ORDER BY game_date
