-- The floor of `runbook status` (nbcore.bench.status): the completeness matrix, table x game date,
-- games present vs expected (and rows), in one query and nothing else. The generated
-- validate/present_games (rows per table and game) is put in front of this text as the CTE
-- `present_games` (nbcore.bench.status); the expected games are the schedule's completed games.
expected AS (
  SELECT game_id, game_date, season_year
  FROM nba_raw.nbac_schedule
  WHERE game_status = 'final'
    AND season_year IN UNNEST(@seasons)
    AND game_date BETWEEN @start_date AND @end_date
),
per_date AS (
  SELECT game_date, season_year, COUNT(*) AS games_expected
  FROM expected
  GROUP BY game_date, season_year
),
got AS (
  SELECT p.table_name, e.game_date, COUNT(*) AS games_present, SUM(p.row_count) AS row_count
  FROM present_games AS p
  JOIN expected AS e ON e.game_id = p.game_id
  GROUP BY p.table_name, e.game_date
)
SELECT
  t AS table_name,
  d.season_year,
  d.game_date,
  d.games_expected,
  COALESCE(g.games_present, 0) AS games_present,
  COALESCE(g.row_count, 0) AS row_count
FROM per_date AS d
CROSS JOIN UNNEST(@tables) AS t
LEFT JOIN got AS g
  ON g.table_name = t AND g.game_date = d.game_date
