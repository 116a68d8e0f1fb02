-- The predictions on @dates as they are now, value columns only (the audit columns run_id and
-- created_at never decide whether a row changed): read once before the stage's first chunk, so
-- each chunk's change-only write needs no read inside its transaction.
SELECT * EXCEPT (run_id, created_at)
FROM nba_predictions.player_prop_predictions
WHERE game_date IN UNNEST(@dates)
