DELETE FROM nba_reference.runbook_lease
WHERE lock_name = @name AND holder = @holder AND host = @host AND run_id = @run_id
