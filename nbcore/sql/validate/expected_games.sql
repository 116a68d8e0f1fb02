-- Completed games the schedule says were played: the expected set for every phase.
-- A postponed game is expected on the date it was actually played (game_date).
SELECT game_id, game_date, season_year, game_type
FROM nba_raw.nbac_schedule
WHERE game_status = 'final'
  AND season_year IN UNNEST(@seasons)
  AND game_date BETWEEN @start_date AND @end_date
