-- How many attempts one run has already recorded per processor and date (a resumed run's next
-- attempt number).
SELECT processor, data_date, MAX(attempt) AS attempts
FROM nba_reference.processor_run_history
WHERE run_id = @run_id
GROUP BY processor, data_date
