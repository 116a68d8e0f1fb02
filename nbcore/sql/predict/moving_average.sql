-- System moving_average: the player's average points over his last 10 games (fewer early in a
-- season), falling back to his last 5, the season, then the posted line. Nothing else: the
-- baseline every other system has to beat. sigma is the spread used for the call's confidence.
-- game_date lets the predict stage read all its dates at once and slice them per chunk.
SELECT
  f.game_id,
  f.game_date,
  f.player_lookup,
  COALESCE(f.points_avg_last_10, f.points_avg_last_5, f.points_avg_season, f.points_line, 0.0) AS predicted_points,
  GREATEST(2.0, COALESCE(
    f.points_std_season,
    0.3 * COALESCE(f.points_avg_last_10, f.points_avg_last_5, f.points_avg_season, f.points_line, 0.0) + 1.0
  )) AS sigma
FROM nba_precompute.ml_feature_store_v2 AS f
WHERE f.game_date IN UNNEST(@dates)
