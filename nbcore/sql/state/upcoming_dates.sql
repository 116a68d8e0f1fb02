-- Per game date in a range: feature rows, and how many of them have no prediction yet. The plan
-- reads the dates of games not final yet from here (the product predicts upcoming games, and no
-- partition state covers them: only completed games are expected).
WITH predicted AS (
  SELECT DISTINCT game_id, player_lookup
  FROM nba_predictions.player_prop_predictions
  WHERE game_date BETWEEN @start_date AND @end_date
)
SELECT
  f.game_date,
  COUNT(*) AS feature_rows,
  COUNTIF(p.game_id IS NULL) AS player_games_missing
FROM nba_precompute.ml_feature_store_v2 AS f
LEFT JOIN predicted AS p
  ON p.game_id = f.game_id AND p.player_lookup = f.player_lookup
WHERE f.game_date BETWEEN @start_date AND @end_date
  AND f.season_year IN UNNEST(@seasons)
GROUP BY f.game_date
ORDER BY f.game_date
