-- The player-games to predict on @dates: every feature row (with @repredict) or only those
-- still missing a prediction from one of @system_ids. Composite factors are joined for the
-- systems that use them. Everything here is known before tip-off (derive guarantees it).
-- Only the columns the systems and the prediction rows use: the stage reads every date it
-- predicts at once (a full backfill: ~800 dates of ~250 player-games) and keeps the frame.
WITH have AS (
  SELECT game_id, player_lookup, COUNT(DISTINCT system_id) AS systems
  FROM nba_predictions.player_prop_predictions
  WHERE game_date IN UNNEST(@dates)
    AND system_id IN UNNEST(@system_ids)
  GROUP BY game_id, player_lookup
)
SELECT
  f.game_id, f.game_date, f.season_year, f.game_type, f.player_lookup, f.team_abbr,
  f.is_home, f.feature_version,
  f.points_avg_last_5, f.points_avg_last_10, f.points_avg_season,
  f.minutes_avg_last_10, f.fatigue_score, f.matchup_factor, f.pace_factor,
  f.is_back_to_back, f.points_line,
  c.composite_adjustment
FROM nba_precompute.ml_feature_store_v2 AS f
LEFT JOIN nba_precompute.player_composite_factors AS c
  ON c.game_id = f.game_id AND c.player_lookup = f.player_lookup AND c.game_date IN UNNEST(@dates)
LEFT JOIN have AS h
  ON h.game_id = f.game_id AND h.player_lookup = f.player_lookup
WHERE f.game_date IN UNNEST(@dates)
  AND (@repredict OR COALESCE(h.systems, 0) < ARRAY_LENGTH(@system_ids))
ORDER BY f.game_date, f.game_id, f.player_lookup
