-- Training rows for the walk-forward regression: the same inputs the systems see, joined to
-- the points actually scored, for games in [@train_start, @train_end] (all before the refit
-- date, so no look-ahead), whatever season they belong to. Only players who played (a player_game_summary row) are included.
-- Only the columns the model's design uses (and the sort keys): the predict stage reads the
-- span of every model it needs at once and keeps it for the whole stage.
SELECT
  f.game_id, f.game_date, f.player_lookup, f.is_home,
  f.points_avg_last_5, f.points_avg_last_10, f.points_avg_season,
  f.minutes_avg_last_10, f.fatigue_score, f.matchup_factor, f.pace_factor,
  f.is_back_to_back, f.points_line,
  c.composite_adjustment,
  CAST(g.points AS FLOAT64) AS actual_points
FROM nba_precompute.ml_feature_store_v2 AS f
JOIN nba_analytics.player_game_summary AS g
  ON g.game_id = f.game_id AND g.player_lookup = f.player_lookup
  AND g.game_date BETWEEN @train_start AND @train_end
LEFT JOIN nba_precompute.player_composite_factors AS c
  ON c.game_id = f.game_id AND c.player_lookup = f.player_lookup
  AND c.game_date BETWEEN @train_start AND @train_end
WHERE f.game_date BETWEEN @train_start AND @train_end
