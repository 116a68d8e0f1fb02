-- Games already loaded per season (a missing schedule file keeps what is there).
SELECT season_year, COUNT(*) AS games
FROM nba_raw.nbac_schedule
GROUP BY season_year
