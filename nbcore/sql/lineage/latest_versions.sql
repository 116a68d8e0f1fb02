-- The latest recorded write of each partition of @tables on @dates: when it was computed and
-- when its rows last changed (what a new write carries forward when it changes nothing).
SELECT table_name, data_date, MAX(computed_at) AS computed_at, MAX(changed_at) AS changed_at
FROM (
  SELECT table_name, data_date, computed_at, changed_at,
    RANK() OVER (PARTITION BY table_name, data_date ORDER BY computed_at DESC) AS rk
  FROM nba_reference.partition_lineage
  WHERE data_date IN UNNEST(@dates)
    AND table_name IN UNNEST(@tables)
)
WHERE rk = 1
GROUP BY table_name, data_date
