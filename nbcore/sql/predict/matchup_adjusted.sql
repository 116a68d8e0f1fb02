-- System matchup_adjusted: the moving average (same fallbacks as moving_average.sql) times the
-- multiplicative adjustments known before tip-off: the opponent's defense and the game's pace
-- from player_composite_factors (shrunk halfway to 1: a 15-day window is a noisy estimate),
-- home court (+/-1.5 %) and the second night of a back-to-back (-5 %).
WITH base AS (
  SELECT
    f.game_id,
    f.player_lookup,
    COALESCE(f.points_avg_last_10, f.points_avg_last_5, f.points_avg_season, f.points_line, 0.0) AS points,
    f.points_std_season,
    COALESCE(c.matchup_factor, f.matchup_factor, 1.0) AS matchup_factor,
    COALESCE(c.pace_factor, f.pace_factor, 1.0) AS pace_factor,
    COALESCE(f.is_home, FALSE) AS is_home,
    COALESCE(f.is_back_to_back, FALSE) AS is_back_to_back
  FROM nba_precompute.ml_feature_store_v2 AS f
  LEFT JOIN nba_precompute.player_composite_factors AS c
    ON c.game_id = f.game_id AND c.player_lookup = f.player_lookup AND c.game_date IN UNNEST(@dates)
  WHERE f.game_date IN UNNEST(@dates)
)
SELECT
  game_id,
  player_lookup,
  points
    * (1.0 + 0.5 * (matchup_factor - 1.0))
    * (1.0 + 0.5 * (pace_factor - 1.0))
    * IF(is_home, 1.015, 0.985)
    * IF(is_back_to_back, 0.95, 1.0) AS predicted_points,
  GREATEST(2.0, COALESCE(points_std_season, 0.3 * points + 1.0)) AS sigma
FROM base
