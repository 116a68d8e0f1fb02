-- Everything the partition state (nbcore.state) reads from the warehouse, in one statement: one
-- round trip on either engine (on BigQuery each job costs about a second). The four reads keep
-- their own files and nbcore.state.reads_sql puts each in front of this text as a CTE:
--   present_games  the generated validate/present_games: rows per table and game;
--   attempts       state/latest_attempts.sql: each processor's latest attempt per date;
--   stale          lineage/stale_partitions.sql: partitions computed before an input changed;
--   unpredicted    state/upcoming_dates.sql: per date, player-games with features and a
--                  missing prediction (read only @with_unpredicted).
-- Here they are tagged by `part` and unioned in one column layout: table_name, game_date,
-- game_id, n (rows / attempts / upstream dates / player-games missing), ok (the latest attempt
-- succeeded), detail (its error / the changed upstream table), first_date and last_date (the
-- upstream's changed dates), changed_at, computed_at.
SELECT
  'present' AS part, table_name, game_date, CAST(game_id AS STRING) AS game_id, row_count AS n,
  CAST(NULL AS BOOL) AS ok, CAST(NULL AS STRING) AS detail, CAST(NULL AS DATE) AS first_date,
  CAST(NULL AS DATE) AS last_date, CAST(NULL AS TIMESTAMP) AS changed_at, CAST(NULL AS TIMESTAMP) AS computed_at
FROM present_games
UNION ALL
SELECT
  'attempt', processor, data_date, CAST(NULL AS STRING), attempts, success, error, CAST(NULL AS DATE),
  CAST(NULL AS DATE), CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP)
FROM attempts
UNION ALL
SELECT
  'stale', table_name, data_date, CAST(NULL AS STRING), upstream_dates, CAST(NULL AS BOOL), upstream_table,
  upstream_first_date, upstream_last_date, upstream_changed_at, computed_at
FROM stale
UNION ALL
SELECT
  'unpredicted', CAST(NULL AS STRING), game_date, CAST(NULL AS STRING), player_games_missing, CAST(NULL AS BOOL),
  CAST(NULL AS STRING), CAST(NULL AS DATE), CAST(NULL AS DATE), CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP)
FROM unpredicted
WHERE player_games_missing > 0 AND @with_unpredicted
