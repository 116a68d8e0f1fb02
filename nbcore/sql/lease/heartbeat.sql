-- Push the expiry on and record the open transaction's session id ('' for none).
UPDATE nba_reference.runbook_lease
SET heartbeat_at = @now, expires_at = @expires, session_id = NULLIF(@session_id, '')
WHERE lock_name = @name AND holder = @holder AND host = @host AND run_id = @run_id
