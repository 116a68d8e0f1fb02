-- Every completed game: the dates derive may process and the reference its defensive checks
-- count against (the expected set of dates comes from the schedule, never from another phase).
SELECT game_id, game_date, season_year, game_type, home_team, away_team
FROM nba_raw.nbac_schedule
WHERE game_status = 'final'
ORDER BY game_date, game_id
