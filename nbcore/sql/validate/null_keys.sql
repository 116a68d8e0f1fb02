-- Rows with a NULL in any key column.
SELECT COUNT(*) AS violations, ANY_VALUE(TO_JSON_STRING(t)) AS example
FROM {{table}} AS t
WHERE {{date_column}} BETWEEN @start_date AND @end_date
  AND ({{null_condition}})
