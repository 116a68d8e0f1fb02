DELETE FROM nba_reference.runbook_lease WHERE lock_name = @name
