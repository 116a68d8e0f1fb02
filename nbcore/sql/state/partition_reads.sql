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
-- upstream's changed dates), changed_at, computed_at. Counts are cast to INT64 (DuckDB's COUNTIF is a
-- HUGEINT, which would turn the whole column into floats).
SELECT
  'present' AS part, p.table_name, p.game_date, CAST(p.game_id AS STRING) AS game_id, CAST(p.row_count AS INT64) AS n,
  CAST(NULL AS BOOL) AS ok, CAST(NULL AS STRING) AS detail, CAST(NULL AS DATE) AS first_date,
  CAST(NULL AS DATE) AS last_date, CAST(NULL AS TIMESTAMP) AS changed_at, CAST(NULL AS TIMESTAMP) AS computed_at
FROM present_games AS p
UNION ALL
SELECT
  'attempt', a.processor, a.data_date, CAST(NULL AS STRING), CAST(a.attempts AS INT64), a.success, a.error, CAST(NULL AS DATE),
  CAST(NULL AS DATE), CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP)
FROM attempts AS a
UNION ALL
SELECT
  'stale', s.table_name, s.data_date, CAST(NULL AS STRING), CAST(s.upstream_dates AS INT64), CAST(NULL AS BOOL), s.upstream_table,
  s.upstream_first_date, s.upstream_last_date, s.upstream_changed_at, s.computed_at
FROM stale AS s
UNION ALL
SELECT
  'unpredicted', CAST(NULL AS STRING), u.game_date, CAST(NULL AS STRING), CAST(u.player_games_missing AS INT64), CAST(NULL AS BOOL),
  CAST(NULL AS STRING), CAST(NULL AS DATE), CAST(NULL AS DATE), CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP)
FROM unpredicted AS u
WHERE u.player_games_missing > 0 AND @with_unpredicted
