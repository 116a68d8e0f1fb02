-- What a grade chunk wrote, per date: rows, graded, voided (for the run history and the result).
SELECT
  game_date,
  COUNT(*) AS n_rows,
  COUNTIF(NOT is_voided) AS graded,
  COUNTIF(is_voided) AS voided
FROM nba_predictions.prediction_accuracy
WHERE game_date IN UNNEST(@dates)
GROUP BY game_date
