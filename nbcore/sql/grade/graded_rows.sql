-- Graded (not voided) rows for the accuracy charts: error distribution, hit rate by
-- confidence band, MAE over the season.
SELECT
  system_id, season_year, game_type, game_date, signed_error, absolute_error, confidence,
  recommendation, was_correct
FROM nba_predictions.prediction_accuracy
WHERE game_date BETWEEN @start_date AND @end_date
  AND season_year IN UNNEST(@seasons)
  AND NOT is_voided
