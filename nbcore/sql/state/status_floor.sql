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
)
SELECT
  t AS table_name,
  e.season_year,
  e.game_date,
  COUNT(*) AS games_expected,
  COUNT(p.game_id) AS games_present,
  COALESCE(SUM(p.row_count), 0) AS row_count
FROM expected AS e
CROSS JOIN UNNEST(@tables) AS t
LEFT JOIN present_games AS p
  ON p.table_name = t AND p.game_id = e.game_id
GROUP BY t, e.season_year, e.game_date
ORDER BY t, e.game_date
