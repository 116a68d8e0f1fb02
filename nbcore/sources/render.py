"""Render phase 2 rows as the phase 1 JSON documents the scrapers produce.

The four sources deliberately differ the way real scrapers do: BDL nests players under
games with "MM:SS" minutes and short stat names, the gamebook lists every rostered player
with a status, the odds API groups lines by event and bookmaker.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone

import pandas as pd

from . import BOXSCORES, GAMEBOOK, PROPS, SCHEDULE


def _none(v):
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


def _records(rows) -> list[dict]:
    """Accept a DataFrame or a list of dicts (the fast path used by the demo writer)."""
    return rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)


def _by_game(rows) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in _records(rows):
        out.setdefault(r["game_id"], []).append(r)
    return out


class _Row(dict):
    __getattr__ = dict.__getitem__


def _iso(v):
    v = _none(v)
    return v.isoformat() if isinstance(v, (date, datetime)) else v


def render_schedule(season_year: int, games: pd.DataFrame) -> dict:
    return {
        "source": SCHEDULE,
        "season_year": int(season_year),
        "season": f"{season_year}-{(season_year + 1) % 100:02d}",
        "games": [
            {
                "game_id": g.game_id,
                "game_date": _iso(g.game_date),
                "game_type": g.game_type,
                "game_status": g.game_status,
                "home_team": g.home_team,
                "away_team": g.away_team,
                "home_score": _none(g.home_score),
                "away_score": _none(g.away_score),
                "periods": _none(g.periods),
                "original_game_date": _iso(g.original_game_date),
                "playoff_round": _none(g.playoff_round),
                "series_game_number": _none(g.series_game_number),
            }
            for g in map(_Row, _records(games))
        ],
    }


def _scraped_at(day: date) -> str:
    return datetime.combine(day, time(23, 30), tzinfo=timezone.utc).isoformat()


def render_boxscores(day: date, schedule_day: pd.DataFrame, rows: pd.DataFrame) -> dict:
    by_game = _by_game(rows)
    games = []
    for g in map(_Row, _records(schedule_day)):
        if g.game_id not in by_game:
            continue
        players = [
            {
                "player": {"id": int(r.player_id), "name": r.player_name},
                "team": r.team_abbr,
                "min": r.minutes,
                "pts": int(r.points), "fgm": int(r.fgm), "fga": int(r.fga), "fg3m": int(r.fg3m), "fg3a": int(r.fg3a),
                "ftm": int(r.ftm), "fta": int(r.fta), "oreb": int(r.oreb), "dreb": int(r.dreb), "reb": int(r.reb),
                "ast": int(r.ast), "stl": int(r.stl), "blk": int(r.blk), "turnover": int(r.tov), "pf": int(r.pf),
            }
            for r in map(_Row, by_game[g.game_id])
        ]
        games.append({"game_id": g.game_id, "home_team": g.home_team, "away_team": g.away_team, "players": players})
    return {"source": BOXSCORES, "game_date": day.isoformat(), "scraped_at": _scraped_at(day), "games": games}


def render_gamebook(day: date, schedule_day: pd.DataFrame, rows: pd.DataFrame) -> dict:
    by_game = _by_game(rows)
    games = []
    for g in map(_Row, _records(schedule_day)):
        if g.game_id not in by_game:
            continue
        players = []
        for r in map(_Row, by_game[g.game_id]):
            active = r.player_status == "active"
            players.append(
                {
                    "person_id": int(r.player_id),
                    "name": r.player_name,
                    "team_tricode": r.team_abbr,
                    "status": r.player_status,
                    "dnp_reason": _none(r.dnp_reason),
                    "starter": bool(r.starter),
                    "minutes": _none(r.minutes) if active else None,
                    "stats": (
                        {"points": int(r.points), "fgm": int(r.fgm), "fga": int(r.fga), "fg3m": int(r.fg3m),
                         "fg3a": int(r.fg3a), "ftm": int(r.ftm), "fta": int(r.fta), "reb": int(r.reb),
                         "ast": int(r.ast), "stl": int(r.stl), "blk": int(r.blk), "tov": int(r.tov), "pf": int(r.pf)}
                        if active else None
                    ),
                }
            )
        games.append({"game_id": g.game_id, "home_team": g.home_team, "away_team": g.away_team, "players": players})
    return {"source": GAMEBOOK, "game_date": day.isoformat(), "scraped_at": _scraped_at(day), "games": games}


def render_props(day: date, schedule_day: pd.DataFrame, rows: pd.DataFrame) -> dict:
    by_game = _by_game(rows)
    snapshot = datetime.combine(day, time(22, 0), tzinfo=timezone.utc).isoformat()
    events = []
    for g in map(_Row, _records(schedule_day)):
        if g.game_id not in by_game:
            continue
        lines = [
            {"player_name": r.player_name, "team": r.team_abbr, "bookmaker": r.bookmaker, "line": float(r.points_line),
             "over_price": int(r.over_price), "under_price": int(r.under_price)}
            for r in map(_Row, by_game[g.game_id])
        ]
        events.append({"game_id": g.game_id, "home_team": g.home_team, "away_team": g.away_team, "snapshot_at": snapshot, "lines": lines})
    return {"source": PROPS, "game_date": day.isoformat(), "market": "player_points", "events": events}


RENDERERS = {"bdl_player_boxscores": render_boxscores, "nbac_gamebook_player_stats": render_gamebook,
             "odds_api_player_points_props": render_props}
