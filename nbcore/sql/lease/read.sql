SELECT holder, host, run_id, acquired_at, heartbeat_at, expires_at, session_id
FROM nba_reference.runbook_lease
WHERE lock_name = @name
