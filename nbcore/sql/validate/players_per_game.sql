-- Players per game and team in the player-level tables, to compare with the plausible range.
SELECT 'bdl_player_boxscores' AS table_name, game_id, ANY_VALUE(game_date) AS game_date, COUNT(DISTINCT player_lookup) AS players
FROM nba_raw.bdl_player_boxscores
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_id
UNION ALL
SELECT 'nbac_gamebook_player_stats', game_id, ANY_VALUE(game_date), COUNT(DISTINCT player_lookup)
FROM nba_raw.nbac_gamebook_player_stats
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_id
UNION ALL
SELECT 'player_game_summary', game_id, ANY_VALUE(game_date), COUNT(DISTINCT player_lookup)
FROM nba_analytics.player_game_summary
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_id
