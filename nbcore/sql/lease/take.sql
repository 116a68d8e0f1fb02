-- Take the lease atomically: drop it if expired or already ours, insert ours if none is left.
-- Whoever holds the row afterwards holds the lease: the script's result is that row (one job).
BEGIN TRANSACTION;
DELETE FROM nba_reference.runbook_lease
WHERE lock_name = @name
  AND (expires_at < @now OR (holder = @holder AND host = @host AND run_id = @run_id));
INSERT INTO nba_reference.runbook_lease
  (lock_name, holder, host, run_id, acquired_at, heartbeat_at, expires_at, session_id)
SELECT @name, @holder, @host, @run_id, @now, @now, @expires, CAST(NULL AS STRING)
FROM (SELECT 1 AS one) AS _one
WHERE NOT EXISTS (SELECT 1 FROM nba_reference.runbook_lease WHERE lock_name = @name);
COMMIT TRANSACTION;
SELECT holder, host, run_id, acquired_at, heartbeat_at, expires_at, session_id
FROM nba_reference.runbook_lease
WHERE lock_name = @name;
