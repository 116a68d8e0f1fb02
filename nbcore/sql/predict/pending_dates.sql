-- Work list of the predict stage: per game date in scope, how many player-games have a feature
-- row and how many of them still lack a prediction from at least one of @system_ids.
WITH have AS (
  SELECT game_id, player_lookup, COUNT(DISTINCT system_id) AS systems
  FROM nba_predictions.player_prop_predictions
  WHERE game_date BETWEEN @start_date AND @end_date
    AND system_id IN UNNEST(@system_ids)
  GROUP BY game_id, player_lookup
)
SELECT
  f.game_date,
  COUNT(*) AS feature_rows,
  COUNTIF(COALESCE(h.systems, 0) < ARRAY_LENGTH(@system_ids)) AS player_games_missing
FROM nba_precompute.ml_feature_store_v2 AS f
LEFT JOIN have AS h
  ON h.game_id = f.game_id AND h.player_lookup = f.player_lookup
WHERE f.game_date BETWEEN @start_date AND @end_date
  AND f.season_year IN UNNEST(@seasons)
GROUP BY f.game_date
ORDER BY f.game_date
