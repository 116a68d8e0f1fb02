"""Is a phase 1 file fit to load? Decoding, JSON, JSON Schema, then the rules a person would check.

Each check raises ``FileProblem(stage, reason)`` with a reason a person can act on, e.g.
``not valid UTF-8: byte 0xe9 at offset 1734 (the file looks latin-1 encoded); re-export it as UTF-8``
or ``game 0022301141, row 3 (Khris Beal): minutes is negative (-12:00)``.
Stages, in order: ``decode``, ``json``, ``schema``, ``rules``.

The JSON Schemas live in ``nbcore/schemas/<source>.schema.json`` (copies of ``docs/schemas``).
A compiled validator (``jsonschema-rs``, in Rust) answers "valid?" quickly for the thousands of good
files; only a failing document goes through ``jsonschema`` to explain every problem precisely. The
rules follow the same pattern: ``dated_rules_hold`` answers "does every rule hold?" on the file's
columns (plain lists, numpy), and only a file it doubts goes through the rules that say why, on a
DataFrame (``check_dated_rules``).
"""
from __future__ import annotations

from ..errors import RunbookError

import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import numpy as np
import pandas as pd

from . import BOXSCORES, GAMEBOOK, PROPS, SCHEDULE
from .parse import frame_of

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
MAX_PROBLEMS = 3  # reasons list the first few problems and count the rest

# Plausibility bounds of a phase 1 file (README, "Limits"). Past them a file is junk, not data: load
# refuses it with the bound it broke, before anything is written. They are the hard tier of the
# checks (like ``sanity.TEAM_PLAYERS``, a block), not the calibrated warnings: no real file comes near.
NBA_TEAMS = 30
MAX_GAMES_PER_DATE = NBA_TEAMS // 2  # every team plays at most one game a day
# 1,230 regular-season + 6 play-in + at most 105 playoff games (4 rounds of best-of-seven) + 1 Cup final = 1,342
MAX_GAMES_PER_SEASON = 1_400
MAX_PLAYERS_PER_TEAM = 20  # no team dresses or lists more (sanity.TEAM_PLAYERS: the gate's block bound)
MAX_BOOKMAKERS = 40  # books quoting one game's player points (the Odds API lists about 40 across all regions)
# rows per game: box scores and gamebooks at most 2 x 20 players; prop lines 2 x 20 players x 40 books
MAX_ROWS_PER_GAME = {"box": 2 * MAX_PLAYERS_PER_TEAM, "props": 2 * MAX_PLAYERS_PER_TEAM * MAX_BOOKMAKERS}
# a full day of prop lines is under 4 MB and a season's schedule under 0.5 MB: a bigger file is refused unread
MAX_FILE_BYTES = 16 * 1024 * 1024


class FileProblem(RunbookError):
    """A file that cannot be loaded; ``stage`` says which check failed, ``reason`` says why."""

    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


class FileTooLarge(FileProblem):
    """A phase 1 file over the supported size (``MAX_FILE_BYTES``): refused before it is parsed.

    Parsing a JSON document holds it several times over (the bytes, the text, the objects, the
    rows), about 9-11 times the file; the bound keeps a load's memory bounded whatever lands in
    the bucket. No real file comes near it (a day of prop lines is under 4 MB)."""

    def __init__(self, file: str, size: int, limit: int):
        super().__init__(
            "read", f"file {file} is {size / 2**20:,.1f} MB, larger than any real phase 1 file "
                    f"(at most {limit // 2**20} MB); it is not read: re-scrape it (a day of box scores, "
                    f"gamebook rows or prop lines is well under 4 MB)")
        self.file, self.size, self.limit = file, size, limit


def refuse_oversized(file: str, size: int | None) -> None:
    """Raise ``FileTooLarge`` when ``size`` (bytes; None: unknown) is over ``MAX_FILE_BYTES``
    (read here at call time, so a test can lower it)."""
    if size is not None and size > MAX_FILE_BYTES:
        raise FileTooLarge(file, size, MAX_FILE_BYTES)


# -- schemas -----------------------------------------------------------------------------

@lru_cache(maxsize=None)
def json_schema(source: str) -> dict:
    path = SCHEMA_DIR / f"{source}.schema.json"
    if not path.is_file():
        raise ValueError(f"no JSON Schema for source {source!r} at {path}")
    return json.loads(path.read_text())


@lru_cache(maxsize=None)
def _fast(source: str):
    """The compiled validator that says only "valid?" (jsonschema-rs: about 0.2 ms a file, where
    fastjsonschema's generated Python took 1-4 ms and was a fifth of a load's time). It is at least
    as strict as ``jsonschema`` on these schemas (its regexes match ``$`` only at the very end and
    ``\\d`` only ASCII digits), so whatever it refuses is decided and explained by ``_precise``."""
    import jsonschema_rs  # on first use: its library adds 8 MB to a process that never validates a file

    return jsonschema_rs.validator_for(json_schema(source))


@lru_cache(maxsize=None)
def _precise(source: str):
    import jsonschema  # slow to import; only needed to explain a failing document

    return jsonschema.Draft202012Validator(json_schema(source))


# -- decode and parse --------------------------------------------------------------------

def decode(raw: bytes) -> str:
    """The file's text, or a FileProblem saying what is wrong with its bytes."""
    if not raw:
        raise FileProblem("decode", "file is empty (0 bytes); the scraper wrote nothing: re-run it for this date")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(raw) > 1 and raw[1:2] == b"\x00" and raw[:1] != b"\x00"):
        raise FileProblem("decode", "file is UTF-16 encoded, expected UTF-8; re-export it as UTF-8")
    if raw[:3] == b"\xef\xbb\xbf":  # a UTF-8 byte order mark is harmless: drop it
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = raw[e.start:e.start + 1].hex()
        guess = ""
        try:
            raw.decode("cp1252")
            guess = " (the file looks latin-1/cp1252 encoded)"
        except UnicodeDecodeError:
            pass
        raise FileProblem("decode", f"not valid UTF-8: byte 0x{bad} at offset {e.start}{guess}; re-export it as UTF-8") from None
    if not text.strip():
        raise FileProblem("decode", f"file is empty ({len(raw)} bytes of whitespace); re-run the scraper for this date")
    return text


class _Pairs(dict):
    """A JSON object that had the same key more than once (``dup_keys`` lists them)."""

    dup_keys: tuple = ()


class _NonFinite(float):
    """``NaN``, ``Infinity`` or ``-Infinity`` in the file: kept as a marker so the check can say where."""

    token = ""


def _non_finite(token: str) -> float:
    value = _NonFinite(token.replace("Infinity", "inf"))
    value.token = token
    return value


def load_json(text: str) -> Any:
    """The parsed document. Refuses what ``json.loads`` would silently accept: a key given twice
    (last one wins) and the non-standard ``NaN`` / ``Infinity`` (they would load as numbers)."""
    flags = {"dup": False, "nonfinite": False}

    def pairs(items):
        obj = dict(items)
        if len(obj) != len(items):
            flags["dup"] = True
            obj = _Pairs(obj)
            seen: set = set()
            obj.dup_keys = tuple(dict.fromkeys(k for k, _ in items if k in seen or seen.add(k)))
        return obj

    def constant(token):
        flags["nonfinite"] = True
        return _non_finite(token)

    try:
        doc = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as e:
        end = len(text.rstrip())
        if e.pos >= end - 1 or "Unterminated string" in e.msg and e.pos >= end - 200:
            raise FileProblem(
                "json", f"file is truncated: the JSON stops at line {e.lineno} column {e.colno} ({len(text)} characters) "
                f"in the middle of a value; the download or the scraper was cut off, fetch the file again") from None
        raise FileProblem("json", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise FileProblem("json", "the JSON is nested too deeply to be a phase 1 file; fetch the file again") from None
    if flags["dup"] or flags["nonfinite"]:
        problems = []
        for path, what in _suspects(doc, []):
            where, field = describe_location(doc, path)
            label = _FIELD_NAMES.get(field, field) if field else "document"
            if what == "dup":
                keys = ", ".join(repr(k) for k in _node(doc, path).dup_keys)
                msg = f"key {keys} is given twice in the same object, so which value is meant is ambiguous; " \
                      f"fix the scraper's output"
                problems.append(f"{where}: {msg}" if where else msg)
            else:
                msg = f"{label} is {_node(doc, path).token}, not a number: NaN and Infinity are not valid JSON; " \
                      f"fix the scraper's output"
                problems.append(f"{where}: {msg}" if where else msg)
        raise FileProblem("json", _join(problems))
    return doc


def _node(doc: Any, path: list) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _suspects(node: Any, path: list):
    """(path, "dup" | "nonfinite") for every duplicated-key object and NaN/Infinity value, in document order."""
    if isinstance(node, _Pairs):
        yield path, "dup"
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _suspects(v, path + [k])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _suspects(v, path + [i])
    elif isinstance(node, _NonFinite):
        yield path, "nonfinite"


# -- JSON Schema ---------------------------------------------------------------------------

_GAME_LISTS = {"games": "game_id", "events": "game_id"}
_ROW_LISTS = {"players": None, "lines": None}


def _player_name(item: Any) -> Optional[str]:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("player"), dict):
        return item["player"].get("name")
    return item.get("name") or item.get("player_name")


def describe_location(doc: Any, path: list) -> tuple[str, Optional[str]]:
    """("game 0022301141, row 3 (Khris Beal)", "min") for a JSON path into a document."""
    parts: list[str] = []
    node = doc
    field = None
    i = 0
    while i < len(path):
        key = path[i]
        nxt = path[i + 1] if i + 1 < len(path) else None
        try:
            child = node[key] if isinstance(node, (dict, list)) else None
        except (KeyError, IndexError, TypeError):
            child = None
        if isinstance(key, str) and isinstance(nxt, int) and isinstance(child, list) and nxt < len(child):
            item = child[nxt]
            if key in _GAME_LISTS:
                gid = item.get("game_id") if isinstance(item, dict) else None
                parts.append(f"game {gid}" if isinstance(gid, str) else f"{key}[{nxt}]")
            elif key in _ROW_LISTS:
                name = _player_name(item)
                parts.append(f"row {nxt + 1}" + (f" ({name})" if isinstance(name, str) else ""))
            else:
                parts.append(f"{key}[{nxt}]")
            node = item
            i += 2
            continue
        field = str(key) if not isinstance(key, int) else f"[{key}]"
        if i < len(path) - 1:
            parts.append(field)
            field = None
        node = child
        i += 1
    return ", ".join(parts), field


_FIELD_NAMES = {"min": "minutes", "pts": "points", "turnover": "turnovers"}


def _schema_reason(doc: Any, err) -> str:
    if err.validator in ("oneOf", "anyOf") and err.context:
        return _schema_reason(doc, _branch_error(err))
    where, field = describe_location(doc, list(err.absolute_path))
    label = _FIELD_NAMES.get(field, field) if field else None
    v = err.validator
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        msg = f"missing field '{missing}'"
        return f"{where}: {msg}" if where else msg
    if v == "minimum" and err.validator_value == 0 and isinstance(err.instance, (int, float)):
        msg = f"{label} is negative ({err.instance})"
    elif v == "pattern" and isinstance(err.instance, str) and err.instance.startswith("-") and field in ("min", "minutes"):
        msg = f"minutes is negative ({err.instance})"
    elif v == "type":
        want = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
        msg = f"{label or 'document'} should be {want}, got {_json_type(err.instance)} {_short(err.instance)}"
    elif v == "const":
        msg = f"{label} is {_short(err.instance)}, expected {_short(err.validator_value)}"
        if field == "source":
            msg += " (a file of another source saved in this folder?)"
    elif v == "enum":
        msg = f"{label} is {_short(err.instance)}, expected one of {', '.join(map(str, err.validator_value))}"
    elif v == "pattern":
        msg = f"{label} {_short(err.instance)} is not in the expected format ({err.schema.get('description') or err.validator_value})"
    elif v in ("maximum", "exclusiveMaximum"):
        msg = (f"{label} is {_short(err.instance)}, more than is plausible (maximum {err.validator_value}); "
               f"check the scraper's output for this row")
    elif v in ("minimum", "exclusiveMinimum"):
        msg = f"{label} is {_short(err.instance)}, out of range ({v} {err.validator_value})"
    else:
        msg = f"{label + ': ' if label else ''}{err.message}"
    return f"{where}: {msg}" if where else msg


def _branch_error(err):
    """For a value matching no branch of a oneOf (``stats``: null or an object), the first error of the branch
    whose type fits the value: "stl should be integer", not "stats should be null"."""
    branches: dict[Any, list] = {}
    for e in err.context:
        branches.setdefault(e.relative_schema_path[0] if e.relative_schema_path else None, []).append(e)
    for errs in branches.values():
        if not any(e.validator == "type" and not e.relative_path for e in errs):
            return sorted(errs, key=lambda e: [str(p) for p in e.absolute_path])[0]
    return err.context[0]


def _json_type(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _short(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, (dict, list)) else ("{...}" if isinstance(v, dict) else "[...]")
    return s if len(s) <= 40 else s[:37] + "..."


def check_schema(source: str, doc: Any) -> None:
    """Raise FileProblem("schema", ...) listing the first few schema violations."""
    try:
        if _fast(source).is_valid(doc):
            return
    except (ValueError, TypeError, OverflowError):  # a value it cannot take in: let the precise validator judge
        pass
    errors = sorted(_precise(source).iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:  # the two validators disagree: trust the precise one
        return
    reasons: list[str] = []
    missing: dict[tuple, list[str]] = {}  # one reason per object listing all its missing fields
    for e in errors:
        if e.validator == "required" and "'" in e.message:
            loc = tuple(e.absolute_path)
            if loc not in missing:
                missing[loc] = []
                reasons.append(loc)  # placeholder, filled below
            missing[loc].append(e.message.split("'")[1])
        else:
            reasons.append(_schema_reason(doc, e))
    out = []
    for r in reasons:
        if isinstance(r, tuple):
            where, last = describe_location(doc, list(r) + ["_"])
            names = missing[r]
            msg = f"missing field{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)}"
            out.append(f"{where}: {msg}" if where else msg)
        else:
            out.append(r)
    raise FileProblem("schema", _join(list(dict.fromkeys(out))))


def join_reasons(reasons: list[str]) -> str:
    """The first few reasons, then how many more (one line for failures.csv)."""
    return _join(reasons)


def _join(reasons: list[str]) -> str:
    head = "; ".join(reasons[:MAX_PROBLEMS])
    more = len(reasons) - MAX_PROBLEMS
    return head + (f"; and {more} more problem{'s' if more > 1 else ''}" if more > 0 else "")


# -- the rules a person would check ----------------------------------------------------------

KEY_COLUMNS = {BOXSCORES: ("game_id", "player_lookup"), GAMEBOOK: ("game_id", "player_lookup"),
               PROPS: ("game_id", "player_lookup", "bookmaker")}


def _row_label(r) -> str:
    return f"game {r.game_id}, row {r._row} ({r.player_name})"


class ScheduleIndex:
    """The schedule as lookups (built once per load, used for thousands of files)."""

    def __init__(self, games: pd.DataFrame):
        self.games = {
            r.game_id: (r.game_date, r.game_status, r.home_team, r.away_team)
            for r in games[["game_id", "game_date", "game_status", "home_team", "away_team"]].itertuples(index=False)
        }
        self.teams = set(games.home_team) | set(games.away_team)
        # final scores, to compare with the sum of the players' points (absent in older callers' frames)
        self.scores: dict[str, tuple[int, int]] = {}
        if {"home_score", "away_score"} <= set(games.columns):
            for gid, hs, as_ in games[["game_id", "home_score", "away_score"]].itertuples(index=False):
                if pd.notna(hs) and pd.notna(as_):
                    self.scores[gid] = (int(hs), int(as_))
        self.final_by_day: dict[date, list[tuple[str, str, str]]] = {}
        for gid, (d, status, home, away) in self.games.items():
            if status == "final":
                self.final_by_day.setdefault(d, []).append((gid, home, away))


def check_dated_rules(source: str, doc: dict, rows: "pd.DataFrame | dict[str, list]", day: date,
                      schedule: "ScheduleIndex | pd.DataFrame") -> None:
    """Rules for one date's file of a dated source (``rows`` parsed with positions=True: a DataFrame,
    or the columns ``parse.parse_columns`` gives).

    ``schedule`` holds every game known to the warehouse (game_id, game_date, game_status,
    home_team, away_team). A file must match its path's date, hold only scheduled games of
    that date with their teams, hold every completed game of that date (a partial date is
    never loaded), and hold consistent, unique player rows.

    Given columns, ``dated_rules_hold`` decides first; only a file it doubts is put in a DataFrame
    and checked below, which says why (the same reasons, whichever form the rows came in).
    """
    if not isinstance(schedule, ScheduleIndex):
        schedule = ScheduleIndex(schedule)
    if isinstance(rows, dict):
        if dated_rules_hold(source, doc, rows, day, schedule):
            return
        rows = frame_of(source, rows)
    problems: list[str] = []
    if doc.get("game_date") != day.isoformat():
        problems.append(f"the file is for {doc.get('game_date')} but its path says {day.isoformat()}: "
                        f"the scraper saved it under the wrong date")
    games_key = "events" if source == PROPS else "games"
    seen: set[str] = set()
    for g in doc[games_key]:
        gid = g["game_id"]
        if gid in seen:
            problems.append(f"game {gid} appears twice in the file")
            continue
        seen.add(gid)
        s = schedule.games.get(gid)
        if s is None:
            problems.append(f"game {gid} ({g['home_team']} vs {g['away_team']}) is not in the schedule")
            continue
        s_day, s_status, s_home, s_away = s
        if s_day != day:
            problems.append(f"game {gid} is scheduled on {s_day}, not on {day}")
        if (g["home_team"], g["away_team"]) != (s_home, s_away):
            problems.append(f"game {gid}: teams {g['home_team']} vs {g['away_team']} do not match the schedule "
                            f"({s_home} vs {s_away})")
        if s_status != "final":
            problems.append(f"game {gid} is not completed in the schedule (status {s_status})")
    present_games = set(rows.game_id)
    for gid, home, away in schedule.final_by_day.get(day, []):
        if gid not in present_games:
            problems.append(f"no rows for game {gid} ({home} vs {away}), which the schedule says "
                            f"was played on {day}; a partial date is never loaded")
    if len(rows):
        volume = _volume_rules(source, rows)
        if volume:  # junk: listing its rows one by one would only bury the reason
            raise FileProblem("rules", _join(volume))
        problems += _row_rules(source, rows, schedule)
    if problems:
        raise FileProblem("rules", _join(problems))


def dated_rules_hold(source: str, doc: dict, cols: dict[str, list], day: date, schedule: ScheduleIndex) -> bool:
    """True when every rule of ``check_dated_rules`` holds for the file (``cols``: its columns from
    ``parse.parse_columns`` with positions), computed on plain lists and numpy arrays.

    It only answers yes or no, the way a compiled schema validator does: the rules there are written
    for explaining (a DataFrame, rows picked out by masks, one reason each), which costs a few
    milliseconds a file even when nothing is wrong, the common case. It errs towards "no": anything
    it does not expect (a value of another type, an error) is a "no", and the explaining rules decide.
    """
    try:
        return _dated_rules_hold(source, doc, cols, day, schedule)
    except Exception:  # the explaining rules raise or report it, as they did before this shortcut
        return False


def _only(kind: type, values: list) -> bool:
    """Every value is exactly of type ``kind`` (not a subclass: a bool is no count)."""
    return not values or set(map(type, values)) == {kind}


def _dated_rules_hold(source: str, doc: dict, cols: dict[str, list], day: date, schedule: ScheduleIndex) -> bool:
    if doc.get("game_date") != day.isoformat():
        return False
    games = schedule.games
    seen: set = set()
    for g in doc["events" if source == PROPS else "games"]:
        gid = g["game_id"]
        s = games.get(gid)
        if gid in seen or s is None or s[0] != day or s[1] != "final" or (g["home_team"], g["away_team"]) != (s[2], s[3]):
            return False
        seen.add(gid)
    game_ids, teams, players = cols["game_id"], cols["team_abbr"], cols["player_lookup"]
    present = set(game_ids)
    if any(gid not in present for gid, _, _ in schedule.final_by_day.get(day, [])):
        return False
    n = len(game_ids)
    if not n:
        return True
    # each row's team plays in its game; players per team within the bound; one row per key
    if not _only(str, game_ids) or not _only(str, teams) or not _only(str, players):
        return False
    roster: dict[tuple, set] = {}
    for gid, team, player in zip(game_ids, teams, players):
        s = games[gid]
        if team != s[2] and team != s[3]:
            return False
        roster.setdefault((gid, team), set()).add(player)
    if any(len(names) > MAX_PLAYERS_PER_TEAM for names in roster.values()):
        return False
    if source == PROPS:
        books = cols["bookmaker"]
        if not _only(str, books):
            return False
        per_game: dict[str, set] = {}
        for gid, book in zip(game_ids, books):
            per_game.setdefault(gid, set()).add(book)
        if any(len(names) > MAX_BOOKMAKERS for names in per_game.values()):
            return False
        return len(set(zip(game_ids, players, books))) == n
    if len(set(zip(game_ids, players))) != n:
        return False
    # box scores and gamebooks: both teams have rows, the counts add up, each team's points make its score
    for gid in present:
        s = games[gid]
        if (gid, s[2]) not in roster or (gid, s[3]) not in roster:
            return False
    counts = ["points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "reb", "ast", "stl", "blk", "tov", "pf"]
    if source == BOXSCORES:
        counts += ["oreb", "dreb"]
    num = {}
    for c in counts:
        values = cols[c]
        if not _only(int, values):  # 3.0, True, a string: the explaining rules say
            return False
        num[c] = np.array(values, dtype=np.int64)  # 10**30 raises OverflowError: a "no"
    stacked = np.stack([num[c] for c in counts])
    if (stacked < 0).any():
        return False
    if (num["points"] != 2 * num["fgm"] + num["fg3m"] + num["ftm"]).any():
        return False
    for made, att in (("fgm", "fga"), ("fg3m", "fg3a"), ("ftm", "fta"), ("fg3m", "fgm")):
        if (num[made] > num[att]).any():
            return False
    if source == BOXSCORES:
        if (num["reb"] != num["oreb"] + num["dreb"]).any():
            return False
        if any(int(m.split(":", 1)[0]) > 70 for m in cols["minutes"]):
            return False
    else:
        statuses, minutes = cols["player_status"], cols["minutes"]
        any_stat = (stacked != 0).any(axis=0)
        for status, m, stat in zip(statuses, minutes, any_stat.tolist()):
            has_minutes = m is not None and m == m  # NaN: not given
            if (has_minutes if status != "active" else not has_minutes) or (status != "active" and stat):
                return False
    totals: dict[tuple, int] = {}
    for gid, team, pts in zip(game_ids, teams, num["points"].tolist()):
        totals[(gid, team)] = totals.get((gid, team), 0) + pts
    for (gid, team), pts in totals.items():
        score = schedule.scores.get(gid)
        if score is not None and pts != (score[0] if team == games[gid][2] else score[1]):
            return False
    return True


def _volume_rules(source: str, rows: pd.DataFrame) -> list[str]:
    """Players per team (and books per game, for prop lines) within the plausibility bounds: a file of
    600,000 lines for one date passes every per-row rule, so its size is what gives it away."""
    problems: list[str] = []
    game_ids = rows["game_id"].tolist()
    players: dict[tuple, set] = {}  # (game, team) -> players: plain sets, a file has a few hundred rows
    for key, player in zip(zip(game_ids, rows["team_abbr"].tolist()), rows["player_lookup"].tolist()):
        players.setdefault(key, set()).add(player)
    for (gid, team), names in players.items():
        if len(names) > MAX_PLAYERS_PER_TEAM:
            problems.append(f"game {gid}: {len(names):,} players of {team}, more than any team lists ({MAX_PLAYERS_PER_TEAM}); "
                            f"the file is not box-score or prop data for this date: re-scrape it")
    if source == PROPS:
        books: dict[str, set] = {}
        for gid, book in zip(game_ids, rows["bookmaker"].tolist()):
            books.setdefault(gid, set()).add(book)
        for gid, names in books.items():
            if len(names) > MAX_BOOKMAKERS:
                problems.append(f"game {gid}: lines from {len(names):,} bookmakers, more than the {MAX_BOOKMAKERS} that quote "
                                f"player points; re-scrape the file")
    return problems


def _bad(rows: pd.DataFrame, mask) -> list:
    """The rows where ``mask`` holds, as namedtuples (cheap when there are none)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    return [SimpleNamespace(**r) for r in rows[mask].to_dict("records")]  # (itertuples renames _row)


def _row_rules(source: str, rows: pd.DataFrame, schedule: "ScheduleIndex") -> list[str]:
    problems: list[str] = []
    game_ids = rows.game_id.tolist()
    teams = rows.team_abbr.tolist()
    # teams: known at all, and one of the two teams of the game
    bad_team = np.zeros(len(rows), dtype=bool)
    for i, (gid, team) in enumerate(zip(game_ids, teams)):
        s = schedule.games.get(gid)
        if s is not None and team != s[2] and team != s[3]:
            bad_team[i] = True
    for r in _bad(rows, bad_team):
        if r.team_abbr not in schedule.teams:
            problems.append(f"{_row_label(r)}: unknown team '{r.team_abbr}'")
        else:
            problems.append(f"{_row_label(r)}: team {r.team_abbr} did not play in this game")
    # both teams have rows (box scores and gamebooks list both sides)
    if source in (BOXSCORES, GAMEBOOK):
        have = set(zip(game_ids, teams))
        for gid in dict.fromkeys(game_ids):
            s = schedule.games.get(gid)
            if s is not None:
                for team in (s[2], s[3]):
                    if (gid, team) not in have:
                        problems.append(f"game {gid} has no player rows for {team}")
    # duplicate player rows
    key = list(KEY_COLUMNS[source])
    keys = list(zip(*(rows[k].tolist() for k in key)))
    if len(set(keys)) != len(keys):
        dupmask = rows.duplicated(key, keep=False)
        for _, grp in rows[dupmask].groupby(key, sort=False):
            first = grp.iloc[0]
            what = f"player {first.player_name}" + (f" with bookmaker {first.bookmaker}" if source == PROPS else "")
            problems.append(f"game {first.game_id}: {what} appears {len(grp)} times (rows {', '.join(map(str, grp._row))})")
    if source in (BOXSCORES, GAMEBOOK):
        problems += _stat_rules(source, rows)
        if not problems:
            problems += _score_rules(rows, schedule)
    return problems


def _score_rules(rows: pd.DataFrame, schedule: "ScheduleIndex") -> list[str]:
    """Each team's points add up to its final score in the schedule (a 300-point row cannot hide)."""
    problems: list[str] = []
    totals: dict[tuple, int] = {}  # (game, team) -> points, in order of appearance
    for gid, team, pts in zip(rows["game_id"].tolist(), rows["team_abbr"].tolist(), rows["points"].tolist()):
        totals[(gid, team)] = totals.get((gid, team), 0) + pts
    for (gid, team), pts in totals.items():
        s, score = schedule.games.get(gid), schedule.scores.get(gid)
        if s is None or score is None:
            continue
        want = score[0] if team == s[2] else score[1] if team == s[3] else None
        if want is not None and int(pts) != want:
            problems.append(f"game {gid}: {team} players' points add up to {int(pts)}, but the schedule's final score "
                            f"gives {team} {want}; a row is wrong or missing in the file (or the schedule's score is)")
    return problems


def _not_a_count(v: Any) -> bool:
    """Not a whole number a 64-bit integer column can hold (10**30, 1e308, NaN, a string)."""
    try:
        return int(v) != v or abs(int(v)) >= 2 ** 63
    except (TypeError, ValueError, OverflowError):
        return True


def _stat_rules(source: str, rows: pd.DataFrame) -> list[str]:
    problems: list[str] = []
    counts = ["points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "reb", "ast", "stl", "blk", "tov", "pf"]
    if source == BOXSCORES:
        counts += ["oreb", "dreb"]
    num = {}
    for c in counts:
        try:
            num[c] = np.asarray(rows[c].to_numpy(), dtype=np.int64)
        except (OverflowError, TypeError, ValueError):  # the schema's maxima normally stop these first
            bad = [r for r in _bad(rows, np.ones(len(rows), dtype=bool)) if _not_a_count(getattr(r, c))]
            return [f"{_row_label(r)}: {c} is {_short(getattr(r, c))}, not a count a game can have" for r in bad[:1]] \
                or [f"{c}: values that are not counts"]
    for col in counts:  # the schema already says so; checked again on the parsed rows
        for r in _bad(rows, num[col] < 0):
            problems.append(f"{_row_label(r)}: {col} is negative ({getattr(r, col)})")
    expect_pts = 2 * num["fgm"] + num["fg3m"] + num["ftm"]
    for r in _bad(rows, num["points"] != expect_pts):
        want = 2 * r.fgm + r.fg3m + r.ftm
        problems.append(f"{_row_label(r)}: points {r.points} != 2*FGM + 3PM + FTM = {want}")
    for made, att, label in (("fgm", "fga", "FGM > FGA"), ("fg3m", "fg3a", "3PM > 3PA"), ("ftm", "fta", "FTM > FTA"),
                             ("fg3m", "fgm", "3PM > FGM")):
        for r in _bad(rows, num[made] > num[att]):
            problems.append(f"{_row_label(r)}: {label} ({getattr(r, made)} > {getattr(r, att)})")
    if source == BOXSCORES:
        for r in _bad(rows, num["reb"] != num["oreb"] + num["dreb"]):
            problems.append(f"{_row_label(r)}: rebounds {r.reb} != offensive {r.oreb} + defensive {r.dreb}")
        played = np.array([min(int(m.split(":", 1)[0]), 10_000) for m in rows.minutes.tolist()], dtype=np.int64)
        for r in _bad(rows, played > 70):
            problems.append(f"{_row_label(r)}: minutes {r.minutes} is more than a game lasts")
    else:
        active = (rows.player_status == "active").to_numpy()
        has_minutes = rows.minutes.notna().to_numpy()
        for r in _bad(rows, active & ~has_minutes):
            problems.append(f"{_row_label(r)}: active player without minutes")
        any_stat = np.zeros(len(rows), dtype=bool)
        for c in counts:
            any_stat |= num[c] != 0
        for r in _bad(rows, ~active & (has_minutes | any_stat)):
            problems.append(f"{_row_label(r)}: status {r.player_status} but has minutes or stats")
    return problems


def _schedule_volume(rows: pd.DataFrame, season_year: int) -> list[str]:
    """Games per season and games per date within what a league can play."""
    problems: list[str] = []
    label = f"{season_year}-{(season_year + 1) % 100:02d}"
    if len(rows) > MAX_GAMES_PER_SEASON:
        problems.append(f"{len(rows):,} games for season {label}, more than a season has ({MAX_GAMES_PER_SEASON:,}: "
                        f"1,230 regular-season, play-in, playoff and Cup final games); the file is not a schedule")
    per_day = rows.groupby("game_date").size()
    for day, n in per_day[per_day > MAX_GAMES_PER_DATE].head(MAX_PROBLEMS).items():
        problems.append(f"{n:,} games on {day}, more than {MAX_GAMES_PER_DATE} ({NBA_TEAMS} teams, one game each a day)")
    return problems


def _team_twice_a_day(rows: pd.DataFrame) -> list[str]:
    """A team in two games on one date (a copied game, a wrong date): no league schedules that."""
    sides = pd.concat([rows[["game_date", "home_team"]].rename(columns={"home_team": "team"}),
                       rows[["game_date", "away_team"]].rename(columns={"away_team": "team"})])
    twice = sides.groupby(["game_date", "team"]).size()
    return [f"{team} plays {n:,} games on {day}; a team plays at most one game a day"
            for (day, team), n in twice[twice > 1].items()]


def check_schedule_rules(doc: dict, rows: pd.DataFrame, season_year: int) -> None:
    """Rules for a season's schedule file (``rows`` parsed with positions=True)."""
    problems: list[str] = []
    if doc.get("season_year") != season_year:
        problems.append(f"the file is for season {doc.get('season_year')} but its path says {season_year}")
    volume = _schedule_volume(rows, season_year)
    if volume:  # junk: listing 600,000 games one by one would only bury the reason
        raise FileProblem("rules", _join(problems + volume))
    for r in _bad(rows, rows.duplicated("game_id", keep=False) & ~rows.duplicated("game_id")):
        problems.append(f"game {r.game_id} appears more than once")
    for r in _bad(rows, rows.home_team == rows.away_team):
        problems.append(f"game {r.game_id}: {r.home_team} plays itself")
    problems += _team_twice_a_day(rows)
    # a season runs from July of its start year to June of the next (the load's season_of_date)
    seasons = rows.game_date.map(lambda d: d.year if d.month >= 7 else d.year - 1)
    for r in _bad(rows, seasons != season_year):
        problems.append(f"game {r.game_id} dated {r.game_date} is outside season {season_year}-{(season_year + 1) % 100:02d} "
                        f"(July {season_year} to June {season_year + 1}); move it to the schedule file of its season or fix its date")
    final = rows.game_status == "final"
    for r in _bad(rows, final & (rows.home_score.isna() | rows.away_score.isna())):
        problems.append(f"game {r.game_id} is final but has no score")
    if problems:
        raise FileProblem("rules", _join(problems))
