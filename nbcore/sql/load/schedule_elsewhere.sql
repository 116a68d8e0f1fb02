-- Games of one season's schedule file that another season's schedule already holds:
-- a game id belongs to exactly one season, so the second file listing it is refused.
SELECT game_id, season_year, source_file
FROM nba_raw.nbac_schedule
WHERE game_id IN UNNEST(@game_ids) AND season_year != @season_year
ORDER BY game_id
