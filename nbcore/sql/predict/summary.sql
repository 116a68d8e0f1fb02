-- What the predictions look like, per system: how many, the recommendation mix, the average
-- prediction, edge and confidence, and how many came from a fitted walk-forward model.
-- Scope: the run's seasons and window, and @dates unless @all_dates.
SELECT
  system_id,
  ANY_VALUE(system_version) AS system_version,
  COUNT(*) AS predictions,
  COUNT(DISTINCT game_date) AS dates,
  COUNTIF(recommendation = 'OVER') AS over_calls,
  COUNTIF(recommendation = 'UNDER') AS under_calls,
  COUNTIF(recommendation = 'PASS' AND points_line IS NOT NULL) AS passes,
  COUNTIF(points_line IS NULL) AS no_line,
  AVG(predicted_points) AS mean_predicted,
  AVG(ABS(edge)) AS mean_abs_edge,
  AVG(confidence) AS mean_confidence,
  COUNTIF(training_window_end IS NOT NULL) AS from_fitted_model
FROM nba_predictions.player_prop_predictions
WHERE game_date BETWEEN @start_date AND @end_date
  AND season_year IN UNNEST(@seasons)
  AND (@all_dates OR game_date IN UNNEST(@dates))
GROUP BY system_id
ORDER BY system_id
