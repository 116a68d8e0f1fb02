"""Parse a phase 1 document back into phase 2 rows: exactly the columns of ``schema/nba_raw.yaml``.

The inverse of ``render.py``. Parsing assumes the document already passed its JSON Schema
(``nbcore.sources.checks``); it does not judge the content, it only reshapes it:

* ``season_year`` comes from the schedule (``season_of``: game_id -> season) when given,
  else from the game id (``00T YY NNNNN``: YY is the season's start year);
* ``player_lookup`` is the platform's join key, derived from the player's name;
* the gamebook's non-active players carry NULL minutes and zero counts (as the platform stores them);
* timestamps are stored as naive UTC.

``source_file`` is the file's path relative to the bucket; ``loaded_at`` is the load time.
With ``positions=True`` two helper columns locate each row in the document for error
messages: ``_game`` (0-based index of the game) and ``_row`` (1-based row within the game).
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from datetime import date, datetime, timezone
from typing import Mapping, Optional

import pandas as pd

from .. import schema
from . import BOXSCORES, GAMEBOOK, PROPS, SCHEDULE

POSITION_COLUMNS = ("_game", "_row")


@lru_cache(maxsize=65536)
def player_lookup(name: str) -> str:
    """The platform's join key: lower-case ASCII letters and digits of the name ("Luka Dončić" -> "lukadoncic")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_name.lower() if ch.isalnum())


def now_utc() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(timezone.utc).replace(tzinfo=None))


def season_from_game_id(game_id: str) -> int:
    return 2000 + int(game_id[3:5])


def _day(v: Optional[str]) -> Optional[date]:
    return date.fromisoformat(v) if v else None


def _utc_naive(v: Optional[str]) -> Optional[pd.Timestamp]:
    if not v:
        return None
    ts = pd.Timestamp(v)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts


def _frame(table: str, data: dict[str, list], source_file: str, loaded_at, positions: bool) -> pd.DataFrame:
    t = schema.table(table)
    n = len(next(iter(data.values()))) if data else 0
    data = dict(data)
    data["source_file"] = [source_file] * n
    data["loaded_at"] = [loaded_at] * n
    cols = list(t.columns) + (list(POSITION_COLUMNS) if positions else [])
    frame = pd.DataFrame({c: data.get(c, [None] * n) for c in cols})
    missing = set(t.columns) - set(data)
    if missing:  # a programming error, not a data error
        raise AssertionError(f"parser for {table} does not fill {sorted(missing)}")
    return frame


def parse_schedule(doc: dict, source_file: str, loaded_at=None, *, positions: bool = False) -> pd.DataFrame:
    games = doc["games"]
    season = int(doc["season_year"])
    g = lambda k: [x.get(k) for x in games]  # noqa: E731
    data = {
        "game_id": g("game_id"),
        "game_date": [_day(x) for x in g("game_date")],
        "season_year": [season] * len(games),
        "game_type": g("game_type"),
        "game_status": g("game_status"),
        "home_team": g("home_team"),
        "away_team": g("away_team"),
        "home_score": g("home_score"),
        "away_score": g("away_score"),
        "periods": g("periods"),
        "original_game_date": [_day(x) for x in g("original_game_date")],
        "playoff_round": g("playoff_round"),
        "series_game_number": g("series_game_number"),
        "_game": list(range(len(games))),
        "_row": [i + 1 for i in range(len(games))],
    }
    frame = _frame(SCHEDULE, data, source_file, loaded_at or now_utc(), positions)
    for c in ("home_score", "away_score", "periods", "playoff_round", "series_game_number"):
        frame[c] = frame[c].astype("Int64")
    return frame


def _players(doc: dict, key: str, players_key: str, season_of: Optional[Mapping[str, int]]):
    """Yield (game_index, game, row_number, player, season, game_date) for every player row."""
    day = _day(doc["game_date"])
    for gi, game in enumerate(doc[key]):
        gid = game["game_id"]
        season = season_of.get(gid) if season_of is not None else None
        if season is None:
            season = season_from_game_id(gid)
        for ri, p in enumerate(game[players_key]):
            yield gi, game, ri + 1, p, season, day


_BDL_STATS = {"points": "pts", "fgm": "fgm", "fga": "fga", "fg3m": "fg3m", "fg3a": "fg3a", "ftm": "ftm", "fta": "fta",
              "oreb": "oreb", "dreb": "dreb", "reb": "reb", "ast": "ast", "stl": "stl", "blk": "blk", "tov": "turnover",
              "pf": "pf"}


def parse_boxscores(doc: dict, source_file: str, loaded_at=None, *, season_of: Optional[Mapping[str, int]] = None,
                    positions: bool = False) -> pd.DataFrame:
    rows = list(_players(doc, "games", "players", season_of))
    data: dict[str, list] = {
        "game_id": [g["game_id"] for _, g, _, _, _, _ in rows],
        "game_date": [d for *_, d in rows],
        "season_year": [s for *_, s, _ in rows],
        "player_id": [p["player"]["id"] for _, _, _, p, _, _ in rows],
        "player_lookup": [player_lookup(p["player"]["name"]) for _, _, _, p, _, _ in rows],
        "player_name": [p["player"]["name"] for _, _, _, p, _, _ in rows],
        "team_abbr": [p["team"] for _, _, _, p, _, _ in rows],
        "opponent_team_abbr": [
            g["away_team"] if p["team"] == g["home_team"] else g["home_team"] if p["team"] == g["away_team"] else None
            for _, g, _, p, _, _ in rows
        ],
        "minutes": [p["min"] for _, _, _, p, _, _ in rows],
        "_game": [gi for gi, *_ in rows],
        "_row": [ri for _, _, ri, *_ in rows],
    }
    for col, key in _BDL_STATS.items():
        data[col] = [p[key] for _, _, _, p, _, _ in rows]
    return _frame(BOXSCORES, data, source_file, loaded_at or now_utc(), positions)


_GB_STATS = ("points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "reb", "ast", "stl", "blk", "tov", "pf")


def parse_gamebook(doc: dict, source_file: str, loaded_at=None, *, season_of: Optional[Mapping[str, int]] = None,
                   positions: bool = False) -> pd.DataFrame:
    rows = list(_players(doc, "games", "players", season_of))
    data: dict[str, list] = {
        "game_id": [g["game_id"] for _, g, _, _, _, _ in rows],
        "game_date": [d for *_, d in rows],
        "season_year": [s for *_, s, _ in rows],
        "player_id": [p["person_id"] for _, _, _, p, _, _ in rows],
        "player_lookup": [player_lookup(p["name"]) for _, _, _, p, _, _ in rows],
        "player_name": [p["name"] for _, _, _, p, _, _ in rows],
        "team_abbr": [p["team_tricode"] for _, _, _, p, _, _ in rows],
        "player_status": [p["status"] for _, _, _, p, _, _ in rows],
        "dnp_reason": [p.get("dnp_reason") for _, _, _, p, _, _ in rows],
        "starter": [bool(p["starter"]) for _, _, _, p, _, _ in rows],
        "minutes": [float(p["minutes"]) if p.get("minutes") is not None else float("nan") for _, _, _, p, _, _ in rows],
        "_game": [gi for gi, *_ in rows],
        "_row": [ri for _, _, ri, *_ in rows],
    }
    for col in _GB_STATS:
        data[col] = [(p["stats"] or {}).get(col, 0) for _, _, _, p, _, _ in rows]
    return _frame(GAMEBOOK, data, source_file, loaded_at or now_utc(), positions)


def parse_props(doc: dict, source_file: str, loaded_at=None, *, season_of: Optional[Mapping[str, int]] = None,
                positions: bool = False) -> pd.DataFrame:
    rows = list(_players(doc, "events", "lines", season_of))
    snapshots = {gi: _utc_naive(g.get("snapshot_at")) for gi, g in enumerate(doc["events"])}  # once per game
    data: dict[str, list] = {
        "game_id": [g["game_id"] for _, g, _, _, _, _ in rows],
        "game_date": [d for *_, d in rows],
        "season_year": [s for *_, s, _ in rows],
        "player_lookup": [player_lookup(p["player_name"]) for _, _, _, p, _, _ in rows],
        "player_name": [p["player_name"] for _, _, _, p, _, _ in rows],
        "team_abbr": [p["team"] for _, _, _, p, _, _ in rows],
        "bookmaker": [p["bookmaker"] for _, _, _, p, _, _ in rows],
        "points_line": [float(p["line"]) for _, _, _, p, _, _ in rows],
        "over_price": [p["over_price"] for _, _, _, p, _, _ in rows],
        "under_price": [p["under_price"] for _, _, _, p, _, _ in rows],
        "snapshot_at": [snapshots[gi] for gi, *_ in rows],
        "_game": [gi for gi, *_ in rows],
        "_row": [ri for _, _, ri, *_ in rows],
    }
    return _frame(PROPS, data, source_file, loaded_at or now_utc(), positions)


PARSERS = {BOXSCORES: parse_boxscores, GAMEBOOK: parse_gamebook, PROPS: parse_props}


def parse_document(source: str, doc: dict, source_file: str, loaded_at=None, *,
                   season_of: Optional[Mapping[str, int]] = None, positions: bool = False) -> pd.DataFrame:
    """Rows of ``nba_raw.<source>`` from one (schema-valid) document."""
    if source == SCHEDULE:
        return parse_schedule(doc, source_file, loaded_at, positions=positions)
    try:
        parser = PARSERS[source]
    except KeyError:
        raise ValueError(f"unknown source {source!r}") from None
    return parser(doc, source_file, loaded_at, season_of=season_of, positions=positions)
