-- Completed games on the schedule between two dates (every season): what each table should cover.
SELECT game_id, game_date, season_year, game_type
FROM nba_raw.nbac_schedule
WHERE game_status = 'final'
  AND game_date BETWEEN @start_date AND @end_date
