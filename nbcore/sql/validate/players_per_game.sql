-- Players who appear per game and team in the player-level tables (the gamebook: every player
-- it lists, DNP and inactive included), for the plausibility check calibrated on the data.
SELECT 'bdl_player_boxscores' AS table_name, game_id, team_abbr, ANY_VALUE(game_date) AS game_date,
  COUNT(DISTINCT player_lookup) AS players
FROM nba_raw.bdl_player_boxscores
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_id, team_abbr
UNION ALL
SELECT 'nbac_gamebook_player_stats', game_id, team_abbr, ANY_VALUE(game_date), COUNT(DISTINCT player_lookup)
FROM nba_raw.nbac_gamebook_player_stats
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_id, team_abbr
UNION ALL
SELECT 'player_game_summary', game_id, team_abbr, ANY_VALUE(game_date), COUNT(DISTINCT player_lookup)
FROM nba_analytics.player_game_summary
WHERE game_date BETWEEN @start_date AND @end_date
GROUP BY game_id, team_abbr
