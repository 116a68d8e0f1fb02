-- The BigQuery warehouse lease (see nbcore/warehouse/lease.py): one row per lock name.
CREATE TABLE IF NOT EXISTS nba_reference.runbook_lease (
  lock_name STRING,
  holder STRING,
  host STRING,
  run_id STRING,
  acquired_at TIMESTAMP,
  heartbeat_at TIMESTAMP,
  expires_at TIMESTAMP,
  session_id STRING
)
