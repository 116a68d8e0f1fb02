-- nba_precompute.ml_feature_store_v2 for the final games of [@start_date, @end_date].
-- One feature row per player per game on date D (the players of upcoming_player_game_context):
-- the model input, assembled from the phase 4 rows for D (each computed from games before D)
-- and the pre-game context (rest, the posted line). feature_version names the layout;
-- features_present counts the 13 features that are not NULL; data_quality_score (0-100) is the
-- share of features present, scaled down while the player's 10-game window is still short.
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
WITH spine AS (
  SELECT game_id, game_date, season_year, game_type, player_lookup, team_abbr, opponent_team_abbr,
    is_home, days_rest, is_back_to_back, points_line
  FROM nba_analytics.upcoming_player_game_context
  WHERE game_date BETWEEN @start_date AND @end_date
    AND game_date IN UNNEST(@dates)
),
features AS (
  SELECT s.*,
    c.games_used,
    c.games_played_season,
    c.points_avg_last_5,
    c.points_avg_last_10,
    c.points_avg_season,
    c.points_std_season,
    c.minutes_avg_last_10,
    z.fg3a_per_game,
    z.pct_points_from_3,
    f.fatigue_score,
    f.matchup_factor,
    f.pace_factor,
    f.composite_adjustment
  FROM spine AS s
  LEFT JOIN nba_precompute.player_daily_cache AS c
    ON c.game_id = s.game_id AND c.player_lookup = s.player_lookup
    AND c.game_date BETWEEN @start_date AND @end_date
  LEFT JOIN nba_precompute.player_shot_zone_analysis AS z
    ON z.game_id = s.game_id AND z.player_lookup = s.player_lookup
    AND z.game_date BETWEEN @start_date AND @end_date
  LEFT JOIN nba_precompute.player_composite_factors AS f
    ON f.game_id = s.game_id AND f.player_lookup = s.player_lookup
    AND f.game_date BETWEEN @start_date AND @end_date
),
counted AS (
  SELECT *,
    IF(points_avg_last_5 IS NULL, 0, 1) + IF(points_avg_last_10 IS NULL, 0, 1)
      + IF(points_avg_season IS NULL, 0, 1) + IF(points_std_season IS NULL, 0, 1)
      + IF(minutes_avg_last_10 IS NULL, 0, 1) + IF(fg3a_per_game IS NULL, 0, 1)
      + IF(pct_points_from_3 IS NULL, 0, 1) + IF(fatigue_score IS NULL, 0, 1)
      + IF(matchup_factor IS NULL, 0, 1) + IF(pace_factor IS NULL, 0, 1)
      + IF(days_rest IS NULL, 0, 1) + IF(is_back_to_back IS NULL, 0, 1)
      + IF(points_line IS NULL, 0, 1) AS features_present
  FROM features
)
SELECT
  game_id,
  game_date,
  season_year,
  game_type,
  player_lookup,
  team_abbr,
  opponent_team_abbr,
  is_home,
  'v2.1' AS feature_version,
  features_present,
  ROUND(100 * features_present / 13 * (0.5 + 0.5 * LEAST(COALESCE(games_used, 0), @lookback_games) / @lookback_games), 2) AS data_quality_score,
  COALESCE(games_used, 0) AS games_used,
  COALESCE(games_played_season, 0) AS games_played_season,
  points_avg_last_5,
  points_avg_last_10,
  points_avg_season,
  points_std_season,
  minutes_avg_last_10,
  fg3a_per_game,
  pct_points_from_3,
  fatigue_score,
  matchup_factor,
  pace_factor,
  composite_adjustment,
  days_rest,
  is_back_to_back,
  points_line,
  CURRENT_TIMESTAMP() AS processed_at
FROM counted
