-- Rows with a NULL in any key column (reads only the key columns and the date column).
SELECT COUNT(*) AS violations, ANY_VALUE(TO_JSON_STRING(STRUCT({{key}}))) AS example
FROM {{table}}
WHERE {{date_column}} BETWEEN @start_date AND @end_date
  AND ({{null_condition}})
