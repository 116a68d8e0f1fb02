-- System matchup_adjusted: the moving average (same fallbacks as moving_average.sql) times the
-- multiplicative adjustments known before tip-off, from player_composite_factors:
--   matchup_factor  the opponent's points allowed vs the league over 15 days, shrunk toward 1
--                   by @matchup_shrink (a 15-day window is a noisy estimate of a defense);
--   pace_factor     the two teams' recent pace vs the league, shrunk by @pace_shrink (points
--                   allowed already carry part of the pace);
--   fatigue_score   1 = fresh, 0.95 on the second night of a back-to-back;
-- and home court (+/-1.5 %). A missing factor counts as 1. game_date lets the predict stage read
-- all its dates at once and slice them per chunk.
WITH base AS (
  SELECT
    f.game_id,
    f.game_date,
    f.player_lookup,
    COALESCE(f.points_avg_last_10, f.points_avg_last_5, f.points_avg_season, f.points_line, 0.0) AS points,
    f.points_std_season,
    COALESCE(c.matchup_factor, f.matchup_factor, 1.0) AS matchup_factor,
    COALESCE(c.pace_factor, f.pace_factor, 1.0) AS pace_factor,
    COALESCE(c.fatigue_score, f.fatigue_score, 1.0) AS fatigue_score,
    COALESCE(f.is_home, FALSE) AS is_home
  FROM nba_precompute.ml_feature_store_v2 AS f
  LEFT JOIN nba_precompute.player_composite_factors AS c
    ON c.game_id = f.game_id AND c.player_lookup = f.player_lookup AND c.game_date IN UNNEST(@dates)
  WHERE f.game_date IN UNNEST(@dates)
)
SELECT
  game_id,
  game_date,
  player_lookup,
  points
    * (1.0 + @matchup_shrink * (matchup_factor - 1.0))
    * (1.0 + @pace_shrink * (pace_factor - 1.0))
    * fatigue_score
    * IF(is_home, 1.015, 0.985) AS predicted_points,
  GREATEST(2.0, COALESCE(points_std_season, 0.3 * points + 1.0)) AS sigma
FROM base
