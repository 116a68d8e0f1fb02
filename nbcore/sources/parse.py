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

import numpy as np
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
    return frame_of(table, _with_file(table, data, source_file, loaded_at, positions))


def _with_file(table: str, data: dict[str, list], source_file: str, loaded_at, positions: bool) -> dict[str, list]:
    """``data`` plus ``source_file`` and ``loaded_at``, as columns in the table's order (and the two
    position columns last when ``positions``)."""
    t = schema.table(table)
    n = row_count(data)
    data = dict(data)
    data["source_file"] = [source_file] * n
    data["loaded_at"] = [loaded_at] * n
    missing = set(t.columns) - set(data)
    if missing:  # a programming error, not a data error
        raise AssertionError(f"parser for {table} does not fill {sorted(missing)}")
    cols = list(t.columns) + (list(POSITION_COLUMNS) if positions else [])
    return {c: data.get(c, [None] * n) for c in cols}


def row_count(columns: dict[str, list]) -> int:
    """How many rows a dict of columns holds."""
    return len(next(iter(columns.values()))) if columns else 0


def frame_of(table: str, columns: dict[str, list]) -> pd.DataFrame:
    """The DataFrame of ``columns`` (name -> values, as ``parse_columns`` gives them). The load builds
    one per batch of dates from the concatenated columns of its files, not one per file: a frame
    costs about as much to build for 200 rows as for 8,000.

    A column of the table's INT64 or FLOAT64 type holding only Python ints (floats) becomes a numpy
    array directly, and a column of one and the same timestamp (``loaded_at``) is filled from it:
    the dtypes pandas would infer, without inferring them value by value (two thirds of the
    frame's cost). Anything else (NULLs, mixed types, a column not in the table) is left to pandas."""
    types = schema.table(table).columns
    return pd.DataFrame({c: _typed(types.get(c), v) for c, v in columns.items()}, columns=list(columns))


def _typed(bq_type: Optional[str], values: list):
    if not values or not isinstance(values, list):
        return values
    kinds = set(map(type, values))
    if bq_type == "INT64" and kinds == {int}:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:  # past 64 bits: pandas keeps it as an object column
            return values
    if bq_type == "FLOAT64" and kinds == {float}:
        return np.array(values, dtype=np.float64)
    if bq_type == "TIMESTAMP" and kinds == {pd.Timestamp} and len(set(map(id, values))) == 1 and values[0].tzinfo is None:
        return np.full(len(values), values[0].to_datetime64())
    return values


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


def _games(doc: dict, key: str, players_key: str, season_of: Optional[Mapping[str, int]]):
    """Yield (game_index, game, players, season) for every game of the document."""
    for gi, game in enumerate(doc[key]):
        gid = game["game_id"]
        season = season_of.get(gid) if season_of is not None else None
        if season is None:
            season = season_from_game_id(gid)
        yield gi, game, game[players_key], season


def _common(doc: dict, key: str, players_key: str, season_of: Optional[Mapping[str, int]], data: dict[str, list]):
    """Fill the columns every dated source has (game, date, season, positions) in ``data``; yield
    (game, players) so the caller fills its own columns game by game, in the same row order."""
    day = _day(doc["game_date"])
    game_id, game_date, season_year, game_pos, row_pos = ([] for _ in range(5))
    data.update(game_id=game_id, game_date=game_date, season_year=season_year, _game=game_pos, _row=row_pos)
    for gi, game, players, season in _games(doc, key, players_key, season_of):
        n = len(players)
        game_id += [game["game_id"]] * n
        game_date += [day] * n
        season_year += [season] * n
        game_pos += [gi] * n
        row_pos += range(1, n + 1)
        yield game, players


_BDL_STATS = {"points": "pts", "fgm": "fgm", "fga": "fga", "fg3m": "fg3m", "fg3a": "fg3a", "ftm": "ftm", "fta": "fta",
              "oreb": "oreb", "dreb": "dreb", "reb": "reb", "ast": "ast", "stl": "stl", "blk": "blk", "tov": "turnover",
              "pf": "pf"}


def _columns_boxscores(doc: dict, season_of: Optional[Mapping[str, int]]) -> dict[str, list]:
    data: dict[str, list] = {}
    cols = {c: [] for c in ("player_id", "player_lookup", "player_name", "team_abbr", "opponent_team_abbr", "minutes",
                            *_BDL_STATS)}
    for g, players in _common(doc, "games", "players", season_of, data):
        names = [p["player"]["name"] for p in players]
        teams = [p["team"] for p in players]
        cols["player_id"] += [p["player"]["id"] for p in players]
        cols["player_lookup"] += map(player_lookup, names)
        cols["player_name"] += names
        cols["team_abbr"] += teams
        if players:
            home, away = g["home_team"], g["away_team"]
            cols["opponent_team_abbr"] += [away if t == home else home if t == away else None for t in teams]
        cols["minutes"] += [p["min"] for p in players]
        for col, key in _BDL_STATS.items():
            cols[col] += [p[key] for p in players]
    data.update(cols)
    return data


_GB_STATS = ("points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "reb", "ast", "stl", "blk", "tov", "pf")


def _columns_gamebook(doc: dict, season_of: Optional[Mapping[str, int]]) -> dict[str, list]:
    data: dict[str, list] = {}
    cols = {c: [] for c in ("player_id", "player_lookup", "player_name", "team_abbr", "player_status", "dnp_reason",
                            "starter", "minutes", *_GB_STATS)}
    for _, players in _common(doc, "games", "players", season_of, data):
        names = [p["name"] for p in players]
        cols["player_id"] += [p["person_id"] for p in players]
        cols["player_lookup"] += map(player_lookup, names)
        cols["player_name"] += names
        cols["team_abbr"] += [p["team_tricode"] for p in players]
        cols["player_status"] += [p["status"] for p in players]
        cols["dnp_reason"] += [p.get("dnp_reason") for p in players]
        cols["starter"] += [bool(p["starter"]) for p in players]
        cols["minutes"] += [float(p["minutes"]) if p.get("minutes") is not None else float("nan") for p in players]
        stats = [p["stats"] or {} for p in players]
        for col in _GB_STATS:
            cols[col] += [st.get(col, 0) for st in stats]
    data.update(cols)
    return data


def _columns_props(doc: dict, season_of: Optional[Mapping[str, int]]) -> dict[str, list]:
    data: dict[str, list] = {}
    cols = {c: [] for c in ("player_lookup", "player_name", "team_abbr", "bookmaker", "points_line", "over_price",
                            "under_price", "snapshot_at")}
    for g, lines in _common(doc, "events", "lines", season_of, data):
        snapshot = _utc_naive(g.get("snapshot_at"))  # once per game
        names = [p["player_name"] for p in lines]
        cols["player_lookup"] += map(player_lookup, names)
        cols["player_name"] += names
        cols["team_abbr"] += [p["team"] for p in lines]
        cols["bookmaker"] += [p["bookmaker"] for p in lines]
        cols["points_line"] += [float(p["line"]) for p in lines]
        cols["over_price"] += [p["over_price"] for p in lines]
        cols["under_price"] += [p["under_price"] for p in lines]
        cols["snapshot_at"] += [snapshot] * len(lines)
    data.update(cols)
    return data


_COLUMNS = {BOXSCORES: _columns_boxscores, GAMEBOOK: _columns_gamebook, PROPS: _columns_props}


def parse_columns(source: str, doc: dict, source_file: str, loaded_at=None, *,
                  season_of: Optional[Mapping[str, int]] = None, positions: bool = False) -> dict[str, list]:
    """Rows of ``nba_raw.<source>`` (a dated source) from one (schema-valid) document, as columns
    (name -> list of values, in the table's order): what ``parse_document`` puts in a DataFrame.

    The load keeps a file's rows as plain lists: its checks read them as lists, and one frame per
    batch of dates is built from them (``frame_of``), instead of a frame per file."""
    try:
        build = _COLUMNS[source]
    except KeyError:
        raise ValueError(f"unknown source {source!r}") from None
    return _with_file(source, build(doc, season_of), source_file, loaded_at or now_utc(), positions)


def parse_boxscores(doc: dict, source_file: str, loaded_at=None, *, season_of: Optional[Mapping[str, int]] = None,
                    positions: bool = False) -> pd.DataFrame:
    return frame_of(BOXSCORES, parse_columns(BOXSCORES, doc, source_file, loaded_at, season_of=season_of, positions=positions))


def parse_gamebook(doc: dict, source_file: str, loaded_at=None, *, season_of: Optional[Mapping[str, int]] = None,
                   positions: bool = False) -> pd.DataFrame:
    return frame_of(GAMEBOOK, parse_columns(GAMEBOOK, doc, source_file, loaded_at, season_of=season_of, positions=positions))


def parse_props(doc: dict, source_file: str, loaded_at=None, *, season_of: Optional[Mapping[str, int]] = None,
                positions: bool = False) -> pd.DataFrame:
    return frame_of(PROPS, parse_columns(PROPS, doc, source_file, loaded_at, season_of=season_of, positions=positions))


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
