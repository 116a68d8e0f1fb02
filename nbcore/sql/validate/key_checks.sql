-- Key health of one table in a date range: key values that occur more than once, and rows
-- with a NULL in a key column, with one example of each. {{table}}, {{key}}, {{date_column}}
-- and {{null_condition}} are identifiers from nbcore/schema; values are query parameters.
WITH in_range AS (
  SELECT {{key}}
  FROM {{table}}
  WHERE {{date_column}} BETWEEN @start_date AND @end_date
),
duplicated AS (
  SELECT TO_JSON_STRING(STRUCT({{key}})) AS key_value, COUNT(*) AS copies
  FROM in_range
  GROUP BY {{key}}
  HAVING COUNT(*) > 1
)
SELECT
  (SELECT COUNT(*) FROM duplicated) AS duplicate_keys,
  (SELECT ANY_VALUE(key_value) FROM duplicated) AS duplicate_example,
  (SELECT COUNT(*) FROM in_range WHERE {{null_condition}}) AS null_keys,
  (SELECT ANY_VALUE(TO_JSON_STRING(STRUCT({{key}}))) FROM in_range WHERE {{null_condition}}) AS null_example
