-- What other runs (or stages run by hand) recorded since a moment: a resumed run re-plans when the
-- warehouse changed under it after its plan was made.
SELECT COUNT(*) AS history_rows, COUNT(DISTINCT run_id) AS runs
FROM nba_reference.processor_run_history
WHERE run_id != @run_id
  AND finished_at > @since
