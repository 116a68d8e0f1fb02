-- The latest recorded run of one processor for each data date in a range.
SELECT run_id, stage, phase, processor, data_date, attempt, success, error, rows_written, finished_at
FROM nba_reference.processor_run_history
WHERE processor = @processor
  AND data_date BETWEEN @start_date AND @end_date
QUALIFY ROW_NUMBER() OVER (PARTITION BY data_date ORDER BY finished_at DESC, attempt DESC) = 1
ORDER BY data_date
