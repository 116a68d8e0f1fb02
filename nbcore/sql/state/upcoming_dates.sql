-- Per game date in a range: feature rows, and how many of those player-games lack a prediction
-- from some system (fewer systems than the date's fullest player-game; none at all counts too).
-- The partition state reads it (a predictions partition with rows for every game can still lack
-- players), and so does the plan, for the dates of games not final yet (the product predicts
-- upcoming games; no partition state covers them, since only completed games are expected).
WITH per_player AS (
  SELECT game_date, game_id, player_lookup, COUNT(DISTINCT system_id) AS systems
  FROM nba_predictions.player_prop_predictions
  WHERE game_date BETWEEN @start_date AND @end_date
  GROUP BY game_date, game_id, player_lookup
),
per_date AS (
  SELECT game_date, MAX(systems) AS systems
  FROM per_player
  GROUP BY game_date
)
SELECT
  f.game_date,
  COUNT(*) AS feature_rows,
  COUNTIF(COALESCE(p.systems, 0) < COALESCE(d.systems, 1)) AS player_games_missing
FROM nba_precompute.ml_feature_store_v2 AS f
LEFT JOIN per_player AS p
  ON p.game_id = f.game_id AND p.player_lookup = f.player_lookup
LEFT JOIN per_date AS d
  ON d.game_date = f.game_date
WHERE f.game_date BETWEEN @start_date AND @end_date
  AND f.season_year IN UNNEST(@seasons)
GROUP BY f.game_date
ORDER BY f.game_date
