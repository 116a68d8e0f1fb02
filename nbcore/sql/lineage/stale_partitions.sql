-- Stale partitions: present partitions of @tables in [@start_date, @end_date] computed before an
-- upstream partition inside their recorded read window changed. One row per (partition,
-- changed upstream table), with the upstream's changed dates and when it changed.
-- Versions: derived partitions carry changed_at in their latest lineage rows; raw partitions
-- are versioned by their latest successful load in processor_run_history.
WITH latest AS (
  SELECT table_name, data_date, upstream_table, read_from, read_to, computed_at, changed_at
  FROM (
    SELECT l.*, RANK() OVER (PARTITION BY table_name, data_date ORDER BY computed_at DESC) AS rk
    FROM nba_reference.partition_lineage AS l
  )
  WHERE rk = 1
),
versions AS (
  SELECT table_name, data_date, MAX(changed_at) AS changed_at
  FROM latest
  GROUP BY table_name, data_date
  UNION ALL
  SELECT CONCAT('nba_raw.', processor) AS table_name, data_date, MAX(finished_at) AS changed_at
  FROM nba_reference.processor_run_history
  WHERE stage = 'load' AND success
  GROUP BY processor, data_date
)
SELECT
  p.table_name,
  p.data_date,
  p.upstream_table,
  MIN(v.data_date) AS upstream_first_date,
  MAX(v.data_date) AS upstream_last_date,
  COUNT(*) AS upstream_dates,
  MAX(v.changed_at) AS upstream_changed_at,
  MAX(p.computed_at) AS computed_at
FROM latest AS p
JOIN versions AS v
  ON v.table_name = p.upstream_table
  AND v.data_date BETWEEN p.read_from AND p.read_to
  AND v.changed_at > p.computed_at
WHERE p.table_name IN UNNEST(@tables)
  AND p.data_date BETWEEN @start_date AND @end_date
GROUP BY p.table_name, p.data_date, p.upstream_table
ORDER BY p.table_name, p.data_date, p.upstream_table
