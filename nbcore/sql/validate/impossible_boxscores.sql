-- Box-score rows whose numbers cannot be true: negative counts, makes above attempts,
-- points that are not 2*FGM + 3PM + FTM, more minutes than a game has.
WITH rows_checked AS (
  SELECT 'bdl_player_boxscores' AS table_name, game_date, game_id, player_lookup,
         points, fgm, fga, fg3m, fg3a, ftm, fta, reb, ast,
         SAFE_CAST(SPLIT(minutes, ':')[SAFE_OFFSET(0)] AS INT64) AS minutes_whole
  FROM nba_raw.bdl_player_boxscores
  WHERE game_date BETWEEN @start_date AND @end_date
  UNION ALL
  SELECT 'nbac_gamebook_player_stats', game_date, game_id, player_lookup,
         points, fgm, fga, fg3m, fg3a, ftm, fta, reb, ast, CAST(FLOOR(minutes) AS INT64)
  FROM nba_raw.nbac_gamebook_player_stats
  WHERE game_date BETWEEN @start_date AND @end_date AND player_status = 'active'
)
SELECT table_name, game_date, game_id, player_lookup,
  CASE
    WHEN LEAST(points, fgm, fga, fg3m, fg3a, ftm, fta, reb, ast) < 0 THEN 'negative count'
    WHEN minutes_whole < 0 THEN 'negative minutes'
    WHEN minutes_whole > 68 THEN 'more minutes than a game has'
    WHEN fgm > fga OR fg3m > fg3a OR ftm > fta THEN 'makes above attempts'
    WHEN fg3m > fgm OR fg3a > fga THEN 'threes above field goals'
    WHEN points != 2 * fgm + fg3m + ftm THEN 'points != 2*FGM + 3PM + FTM'
  END AS problem
FROM rows_checked
WHERE LEAST(points, fgm, fga, fg3m, fg3a, ftm, fta, reb, ast) < 0
   OR minutes_whole < 0 OR minutes_whole > 68
   OR fgm > fga OR fg3m > fg3a OR ftm > fta OR fg3m > fgm OR fg3a > fga
   OR points != 2 * fgm + fg3m + ftm
ORDER BY game_date, game_id
LIMIT 200
