-- Rows per game and date in every tracked table (only the partition and game_id columns are read,
-- so on BigQuery this costs next to nothing).
SELECT 'bdl_player_boxscores' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_raw.bdl_player_boxscores
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nbac_gamebook_player_stats' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_raw.nbac_gamebook_player_stats
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'odds_api_player_points_props' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_raw.odds_api_player_points_props
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'player_game_summary' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_analytics.player_game_summary
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'team_offense_game_summary' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_analytics.team_offense_game_summary
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'team_defense_game_summary' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_analytics.team_defense_game_summary
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'upcoming_player_game_context' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_analytics.upcoming_player_game_context
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'team_defense_zone_analysis' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.team_defense_zone_analysis
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'player_shot_zone_analysis' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.player_shot_zone_analysis
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'player_composite_factors' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.player_composite_factors
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'player_daily_cache' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.player_daily_cache
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'ml_feature_store_v2' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.ml_feature_store_v2
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'player_prop_predictions' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_predictions.player_prop_predictions
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'prediction_accuracy' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_predictions.prediction_accuracy
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
