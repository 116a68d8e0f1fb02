-- The latest three attempts of every processor that recorded a run for one data date (runbook why).
SELECT run_id, stage, phase, processor, data_date, attempt, success, error, rows_written, finished_at
FROM nba_reference.processor_run_history
WHERE data_date = @day
QUALIFY ROW_NUMBER() OVER (PARTITION BY processor ORDER BY finished_at DESC, attempt DESC) <= 3
ORDER BY processor, finished_at DESC, attempt DESC
