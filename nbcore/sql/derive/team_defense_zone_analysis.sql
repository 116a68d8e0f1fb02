-- nba_precompute.team_defense_zone_analysis for the final games of [@start_date, @end_date].
-- One row per team per game on date D: the team's defense over the previous 15 calendar days
-- [D-15, D-1] of the same season (never D itself: no look-ahead), and the league over the same
-- window. At a season's start the window is short or empty: games_used says how many games the
-- row used (0 = no history; the values are then NULL).
-- def_rating_vs_league = points allowed per game / the league's points per game in the window
-- (> 1 = a defense that gives up more than average). Points per possession stays in
-- defensive_rating. Sums of fractional values are NUMERIC (exact), so a value never depends on
-- the order rows are added in (chunk sizes give identical tables).
-- Only the dates in @dates (the chunk's requested dates inside the range) get rows.
WITH spine AS (
  SELECT game_id, game_date, season_year, home_team AS team_abbr
  FROM nba_raw.nbac_schedule
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates) AND game_status = 'final'
  UNION ALL
  SELECT game_id, game_date, season_year, away_team AS team_abbr
  FROM nba_raw.nbac_schedule
  WHERE game_date BETWEEN @start_date AND @end_date AND game_date IN UNNEST(@dates) AND game_status = 'final'
),
history AS (
  SELECT game_date, season_year, team_abbr, points_allowed, opp_fg2m, opp_fg2a, opp_fg3m, opp_fg3a,
    opp_fta, CAST(possessions AS NUMERIC) AS possessions, CAST(pace AS NUMERIC) AS pace
  FROM nba_analytics.team_defense_game_summary
  WHERE game_date BETWEEN DATE_SUB(@start_date, INTERVAL @lookback_days DAY) AND DATE_SUB(@end_date, INTERVAL 1 DAY)
),
game_dates AS (
  SELECT DISTINCT game_date, season_year FROM spine
),
league AS (
  SELECT d.game_date, d.season_year,
    SAFE_DIVIDE(SUM(h.points_allowed), COUNT(h.team_abbr)) AS points_per_game,
    SAFE_DIVIDE(100 * SUM(h.points_allowed), SUM(h.possessions)) AS defensive_rating,
    AVG(h.pace) AS pace,
    SAFE_DIVIDE(SUM(h.opp_fg2m), SUM(h.opp_fg2a)) AS fg2_pct,
    SAFE_DIVIDE(SUM(h.opp_fg3m), SUM(h.opp_fg3a)) AS fg3_pct
  FROM game_dates AS d
  LEFT JOIN history AS h
    ON h.season_year = d.season_year
    AND h.game_date BETWEEN DATE_SUB(d.game_date, INTERVAL @lookback_days DAY) AND DATE_SUB(d.game_date, INTERVAL 1 DAY)
  GROUP BY d.game_date, d.season_year
),
team AS (
  SELECT s.game_id, s.game_date, s.season_year, s.team_abbr,
    COUNT(h.team_abbr) AS games_used,
    AVG(h.points_allowed) AS opp_points_per_game,
    SAFE_DIVIDE(SUM(h.opp_fg2m), SUM(h.opp_fg2a)) AS opp_fg2_pct,
    SAFE_DIVIDE(SUM(h.opp_fg3m), SUM(h.opp_fg3a)) AS opp_fg3_pct,
    SAFE_DIVIDE(SUM(h.opp_fta), SUM(h.opp_fg2a + h.opp_fg3a)) AS opp_ft_rate,
    SAFE_DIVIDE(100 * SUM(h.points_allowed), SUM(h.possessions)) AS defensive_rating,
    AVG(h.pace) AS pace
  FROM spine AS s
  LEFT JOIN history AS h
    ON h.team_abbr = s.team_abbr
    AND h.season_year = s.season_year
    AND h.game_date BETWEEN DATE_SUB(s.game_date, INTERVAL @lookback_days DAY) AND DATE_SUB(s.game_date, INTERVAL 1 DAY)
  GROUP BY s.game_id, s.game_date, s.season_year, s.team_abbr
)
SELECT
  t.game_id,
  t.game_date,
  t.season_year,
  t.team_abbr,
  t.games_used,
  ROUND(CAST(t.opp_points_per_game AS FLOAT64), 4) AS opp_points_per_game,
  ROUND(CAST(t.opp_fg2_pct AS FLOAT64), 4) AS opp_fg2_pct,
  ROUND(CAST(t.opp_fg3_pct AS FLOAT64), 4) AS opp_fg3_pct,
  ROUND(CAST(t.opp_ft_rate AS FLOAT64), 4) AS opp_ft_rate,
  ROUND(CAST(t.defensive_rating AS FLOAT64), 4) AS defensive_rating,
  ROUND(CAST(t.pace AS FLOAT64), 4) AS pace,
  ROUND(CAST(SAFE_DIVIDE(t.opp_points_per_game, l.points_per_game) AS FLOAT64), 4) AS def_rating_vs_league,
  ROUND(CAST(l.points_per_game AS FLOAT64), 4) AS league_points_per_game,
  ROUND(CAST(l.defensive_rating AS FLOAT64), 4) AS league_defensive_rating,
  ROUND(CAST(l.pace AS FLOAT64), 4) AS league_pace,
  ROUND(CAST(l.fg2_pct AS FLOAT64), 4) AS league_opp_fg2_pct,
  ROUND(CAST(l.fg3_pct AS FLOAT64), 4) AS league_opp_fg3_pct,
  CURRENT_TIMESTAMP() AS processed_at
FROM team AS t
JOIN league AS l ON l.game_date = t.game_date AND l.season_year = t.season_year
