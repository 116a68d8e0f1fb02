-- The latest recorded run of each phase 2 processor for each data date in a range.
SELECT processor, data_date, run_id, attempt, success, error, finished_at
FROM nba_reference.processor_run_history
WHERE phase = '2'
  AND processor IN UNNEST(@processors)
  AND data_date BETWEEN @start_date AND @end_date
QUALIFY ROW_NUMBER() OVER (PARTITION BY processor, data_date ORDER BY finished_at DESC, attempt DESC) = 1
ORDER BY processor, data_date
