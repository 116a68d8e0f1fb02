-- The latest recorded attempt of each processor on each data date in a range, and how many
-- attempts were recorded in all: a partition whose latest attempt failed is in state `failed`
-- (nbcore.state) until an attempt succeeds. Processors are bare table names.
SELECT processor, data_date, run_id, stage, success, error, attempt, finished_at, attempts
FROM (
  SELECT
    processor, data_date, run_id, stage, success, error, attempt, finished_at,
    COUNT(*) OVER (PARTITION BY processor, data_date) AS attempts,
    ROW_NUMBER() OVER (PARTITION BY processor, data_date ORDER BY finished_at DESC, attempt DESC) AS rn
  FROM nba_reference.processor_run_history
  WHERE processor IN UNNEST(@processors)
    AND data_date BETWEEN @start_date AND @end_date
)
WHERE rn = 1
ORDER BY processor, data_date
