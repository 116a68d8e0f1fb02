-- Rows per game and date of one table over a date range (runbook why / plan).
-- {{table}} and {{date_column}} are identifiers from nbcore.schema, never values.
SELECT {{date_column}} AS game_date, game_id, COUNT(*) AS row_count
FROM {{table}}
WHERE {{date_column}} BETWEEN @start_date AND @end_date
GROUP BY {{date_column}}, game_id
