-- Additive accuracy sums per system, season and game type (Python derives MAE, bias, hit
-- rates and their intervals, and can roll them up to any coarser level exactly).
-- signed_error = predicted - actual, so a positive bias means the system predicts too many.
SELECT
  system_id,
  season_year,
  game_type,
  COUNT(*) AS n_rows,
  COUNTIF(NOT is_voided) AS graded,
  COUNTIF(is_voided) AS voided,
  SUM(IF(is_voided, 0.0, absolute_error)) AS sum_abs_error,
  SUM(IF(is_voided, 0.0, signed_error)) AS sum_signed_error,
  SUM(IF(is_voided, 0.0, absolute_error * absolute_error)) AS sum_sq_error,
  COUNTIF(NOT is_voided AND within_3) AS within_3,
  COUNTIF(NOT is_voided AND within_5) AS within_5,
  COUNTIF(NOT is_voided AND recommendation IN ('OVER', 'UNDER')) AS calls,
  COUNTIF(NOT is_voided AND recommendation = 'OVER') AS over_calls,
  COUNTIF(NOT is_voided AND recommendation = 'UNDER') AS under_calls,
  COUNTIF(was_correct) AS correct,
  COUNTIF(NOT was_correct) AS wrong,
  COUNTIF(NOT is_voided AND recommendation = 'OVER' AND was_correct) AS over_correct,
  COUNTIF(NOT is_voided AND recommendation = 'OVER' AND NOT was_correct) AS over_wrong,
  COUNTIF(NOT is_voided AND recommendation = 'UNDER' AND was_correct) AS under_correct,
  COUNTIF(NOT is_voided AND recommendation = 'UNDER' AND NOT was_correct) AS under_wrong,
  COUNTIF(NOT is_voided AND recommendation IN ('OVER', 'UNDER') AND is_push) AS pushes,
  COUNTIF(NOT is_voided AND recommendation = 'PASS' AND points_line IS NOT NULL) AS passes,
  COUNTIF(NOT is_voided AND points_line IS NULL) AS no_line
FROM nba_predictions.prediction_accuracy
WHERE game_date BETWEEN @start_date AND @end_date
  AND season_year IN UNNEST(@seasons)
GROUP BY system_id, season_year, game_type
ORDER BY system_id, season_year, game_type
