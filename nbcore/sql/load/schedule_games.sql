-- Every game the warehouse knows, for checking phase 1 files against the schedule
-- (final scores too: each team's player points must add up to its score).
SELECT game_id, game_date, season_year, game_status, home_team, away_team, home_score, away_score
FROM nba_raw.nbac_schedule
