-- Every game the warehouse knows, for checking phase 1 files against the schedule.
SELECT game_id, game_date, season_year, game_status, home_team, away_team
FROM nba_raw.nbac_schedule
