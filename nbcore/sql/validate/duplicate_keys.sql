-- Key values that occur more than once in a date range. {{table}} and {{key}} come from
-- nbcore/schema (identifiers only); values are query parameters.
SELECT {{key}}, COUNT(*) AS copies
FROM {{table}}
WHERE {{date_column}} BETWEEN @start_date AND @end_date
GROUP BY {{key}}
HAVING COUNT(*) > 1
LIMIT 20
