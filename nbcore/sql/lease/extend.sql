-- Push the lease's expiry on (the driver's periodic heartbeat); the session id recorded by the
-- stage kernels' transactions is left as it is.
UPDATE nba_reference.runbook_lease
SET heartbeat_at = @now, expires_at = @expires
WHERE lock_name = @name AND holder = @holder AND host = @host AND run_id = @run_id
