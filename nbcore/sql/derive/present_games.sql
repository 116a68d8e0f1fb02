-- Which games of [@start_date, @end_date] each table derive reads or writes has rows for, and how
-- many rows: the defensive checks compare these with the schedule, and derive records rows
-- written per date in processor_run_history. One statement for every table keeps it one scan
-- per table (date-partitioned on BigQuery).
SELECT 'nba_raw.bdl_player_boxscores' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_raw.bdl_player_boxscores
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_raw.nbac_gamebook_player_stats' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_raw.nbac_gamebook_player_stats
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_raw.odds_api_player_points_props' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_raw.odds_api_player_points_props
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_analytics.player_game_summary' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_analytics.player_game_summary
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_analytics.team_offense_game_summary' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_analytics.team_offense_game_summary
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_analytics.team_defense_game_summary' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_analytics.team_defense_game_summary
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_analytics.upcoming_player_game_context' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_analytics.upcoming_player_game_context
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_precompute.team_defense_zone_analysis' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.team_defense_zone_analysis
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_precompute.player_shot_zone_analysis' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.player_shot_zone_analysis
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_precompute.player_composite_factors' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.player_composite_factors
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_precompute.player_daily_cache' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.player_daily_cache
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
UNION ALL
SELECT 'nba_precompute.ml_feature_store_v2' AS table_name, game_date, game_id, COUNT(*) AS row_count
FROM nba_precompute.ml_feature_store_v2
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_date, game_id
