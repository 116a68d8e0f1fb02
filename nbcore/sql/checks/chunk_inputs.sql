-- Everything the defensive checks of a derive stage read, in one query (one BigQuery job per
-- stage instead of one per chunk, or one per upstream and check; see nbcore/derive/checks.py):
--   kind 'run':  the latest recorded run of each upstream processor in @processors on each of
--                @prev_dates (the chunks' previous game dates): data_date, success, error, run_id;
--   kind 'game': which games on @dates (the dates the chunks' checks need; @start_date and
--                @end_date bound both date lists, so partitions are pruned) each table derive reads has
--                rows for.
WITH runs AS (
  SELECT processor, data_date, success, error, run_id,
    ROW_NUMBER() OVER (PARTITION BY processor, data_date ORDER BY finished_at DESC, attempt DESC) AS rn
  FROM nba_reference.processor_run_history
  WHERE processor IN UNNEST(@processors)
    AND data_date BETWEEN @start_date AND @end_date AND data_date IN UNNEST(@prev_dates)
),
games AS (
  SELECT DISTINCT 'nba_raw.bdl_player_boxscores' AS table_name, game_id FROM nba_raw.bdl_player_boxscores
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_raw.nbac_gamebook_player_stats' AS table_name, game_id FROM nba_raw.nbac_gamebook_player_stats
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_raw.odds_api_player_points_props' AS table_name, game_id FROM nba_raw.odds_api_player_points_props
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_analytics.player_game_summary' AS table_name, game_id FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_analytics.team_offense_game_summary' AS table_name, game_id FROM nba_analytics.team_offense_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_analytics.team_defense_game_summary' AS table_name, game_id FROM nba_analytics.team_defense_game_summary
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_analytics.upcoming_player_game_context' AS table_name, game_id FROM nba_analytics.upcoming_player_game_context
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_precompute.team_defense_zone_analysis' AS table_name, game_id FROM nba_precompute.team_defense_zone_analysis
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_precompute.player_shot_zone_analysis' AS table_name, game_id FROM nba_precompute.player_shot_zone_analysis
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_precompute.player_composite_factors' AS table_name, game_id FROM nba_precompute.player_composite_factors
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_precompute.player_daily_cache' AS table_name, game_id FROM nba_precompute.player_daily_cache
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
  UNION ALL
  SELECT DISTINCT 'nba_precompute.ml_feature_store_v2' AS table_name, game_id FROM nba_precompute.ml_feature_store_v2
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates)
)
SELECT 'run' AS kind, processor AS table_name, data_date, CAST(NULL AS STRING) AS game_id, success, error, run_id
FROM runs
WHERE rn = 1
UNION ALL
SELECT 'game' AS kind, table_name, CAST(NULL AS DATE) AS data_date, game_id, CAST(NULL AS BOOL) AS success, CAST(NULL AS STRING) AS error,
  CAST(NULL AS STRING) AS run_id
FROM games
