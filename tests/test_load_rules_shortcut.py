"""The load's shortcuts give the same answers as the checks they stand in front of.

A file's rules are decided on plain columns (``checks.dated_rules_hold``) and only a doubted file goes
through the explaining rules on a DataFrame; its schema validity is decided by jsonschema-rs and only a
refused document goes through ``jsonschema``; its rows become one DataFrame per batch of dates. These
tests hold each shortcut to what it replaces, on the small demo's files and on files broken on purpose.
"""
from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from nbcore.bucket import Bucket
from nbcore.load import _batch_frame, schedule_index
from nbcore.sources import BOXSCORES, DATED_SOURCES, GAMEBOOK, PROPS, file_path
from nbcore.sources.checks import FileProblem, _fast, _precise, check_dated_rules, dated_rules_hold
from nbcore.sources.parse import POSITION_COLUMNS, frame_of, parse_columns, parse_document


def _players(doc):
    return [p for g in doc["events" if "events" in doc else "games"] for p in g["lines" if "events" in doc else "players"]]


def _game_rows(doc):
    g = (doc["events"] if "events" in doc else doc["games"])[0]
    return g, g["lines" if "events" in doc else "players"]


def _stat(doc, key_box, key_gb, delta):
    _, rows = _game_rows(doc)
    p = rows[0]
    if "stats" in p:
        if p["stats"]:
            p["stats"][key_gb] = p["stats"].get(key_gb, 0) + delta
    elif key_box in p:  # prop lines have no counts
        p[key_box] += delta


def _rename(p, name):
    if isinstance(p.get("player"), dict):
        p["player"] = {**p["player"], "name": name}
    elif "player_name" in p:
        p["player_name"] = name
    else:
        p["name"] = name


def _crowd(doc, n):
    """n extra players (or lines) for the first row's team, each under a new name."""
    _, rows = _game_rows(doc)
    for i in range(n):
        extra = copy.deepcopy(rows[0])
        _rename(extra, f"Extra Player {i}")
        rows.append(extra)


def _books(doc):
    _, rows = _game_rows(doc)
    for i in range(45):
        extra = copy.deepcopy(rows[0])
        extra["bookmaker"] = f"book{i}"
        rows.append(extra)


def _shift_points(doc):
    """Two points moved from one player to a teammate (each row still adds up; the team total does too)."""
    _, rows = _game_rows(doc)
    a = rows[0]
    key = "stats" if "stats" in a else None
    if key is None and "pts" in a:
        a["pts"] += 2
        a["fgm"] += 1
        a["fga"] += 1
    elif key and a["stats"]:
        a["stats"]["points"] += 2
        a["stats"]["fgm"] += 1
        a["stats"]["fga"] += 1


MUTATIONS = {
    "untouched": lambda doc: None,
    "wrong date": lambda doc: doc.update(game_date="1999-01-01"),
    "teams swapped": lambda doc: _game_rows(doc)[0].update(home_team=_game_rows(doc)[0]["away_team"],
                                                           away_team=_game_rows(doc)[0]["home_team"]),
    "game dropped": lambda doc: (doc["events"] if "events" in doc else doc["games"]).pop(),
    "game twice": lambda doc: (doc["events"] if "events" in doc else doc["games"]).append(copy.deepcopy(_game_rows(doc)[0])),
    "row twice": lambda doc: _game_rows(doc)[1].append(copy.deepcopy(_game_rows(doc)[1][0])),
    "unknown team": lambda doc: _game_rows(doc)[1][0].update(
        {("team_tricode" if "team_tricode" in _game_rows(doc)[1][0] else "team"): "XXX"}),
    "points off by one": lambda doc: _stat(doc, "pts", "points", 1),
    "made over attempted": lambda doc: _stat(doc, "fgm", "fgm", 50),
    "negative steals": lambda doc: _stat(doc, "stl", "stl", -100),
    "steals 10**30": lambda doc: _stat(doc, "stl", "stl", 10 ** 30),
    "steals as a float": lambda doc: _stat(doc, "stl", "stl", 0.0),
    "rebounds off": lambda doc: _stat(doc, "reb", "reb", 1),
    "minutes 75": lambda doc: _game_rows(doc)[1][0].update(min="75:00") if "min" in _game_rows(doc)[1][0] else None,
    "active without minutes": lambda doc: _game_rows(doc)[1][0].update(minutes=None) if "person_id" in _game_rows(doc)[1][0] else None,
    "inactive with minutes": lambda doc: _game_rows(doc)[1][0].update(status="inactive") if "person_id" in _game_rows(doc)[1][0] else None,
    "21 players": lambda doc: _crowd(doc, 21),
    "45 bookmakers": lambda doc: _books(doc) if "events" in doc else None,
    "score off": _shift_points,
}


@pytest.fixture(scope="module")
def files(small_demo):
    """(source, day, document) for a few dates of each dated source, and the schedule lookups."""
    params, built = small_demo
    bucket = Bucket(params.bucket)
    schedule, season_of = schedule_index(bucket, params.season_list)
    out = []
    root = Path(params.bucket)
    for source in DATED_SOURCES:
        paths = sorted((root / source).glob("*.json"))
        for p in paths[:: max(1, len(paths) // 4)][:4]:
            out.append((source, date.fromisoformat(p.stem), json.loads(p.read_text())))
    return out, schedule, season_of


def _explained(source, doc, frame, day, schedule):
    try:
        check_dated_rules(source, doc, frame, day, schedule)
        return None
    except FileProblem as e:
        return e.reason
    except Exception as e:  # what the load reports as an unexpected error
        return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_the_shortcut_never_passes_a_file_the_rules_refuse(files, mutation):
    """``dated_rules_hold`` says yes only when the explaining rules find nothing, and the reasons are the
    same whether the rows come as columns or as a DataFrame."""
    docs, schedule, season_of = files
    for source, day, original in docs:
        doc = copy.deepcopy(original)
        MUTATIONS[mutation](doc)
        cols = parse_columns(source, doc, file_path(source, day), season_of=season_of, positions=True)
        frame = frame_of(source, cols)
        reason = _explained(source, doc, frame, day, schedule)
        holds = dated_rules_hold(source, doc, cols, day, schedule)
        assert not (holds and reason), f"{mutation} {source} {day}: the shortcut passed a file the rules refuse: {reason}"
        if mutation == "untouched":
            assert holds == (reason is None), f"{source} {day}: a good file must take the shortcut"
        assert _explained(source, doc, cols, day, schedule) == reason, f"{mutation} {source} {day}"


def test_a_mutation_list_that_breaks_every_rule(files):
    """The mutations above do reach the rules: each refuses at least one file (else the test above proves nothing)."""
    docs, schedule, season_of = files
    for mutation, mutate in MUTATIONS.items():
        if mutation in ("untouched", "steals as a float"):
            continue
        refused = 0
        for source, day, original in docs:
            doc = copy.deepcopy(original)
            mutate(doc)
            cols = parse_columns(source, doc, file_path(source, day), season_of=season_of, positions=True)
            refused += not dated_rules_hold(source, doc, cols, day, schedule)
        assert refused, mutation


def test_the_compiled_schema_validator_passes_nothing_jsonschema_refuses(files):
    docs, _, _ = files
    for source, day, original in docs:
        for mutation, mutate in MUTATIONS.items():
            doc = copy.deepcopy(original)
            mutate(doc)
            if _fast(source).is_valid(doc):
                assert not list(_precise(source).iter_errors(doc)), f"{mutation} {source} {day}"
        assert _fast(source).is_valid(original) == _precise(source).is_valid(original)


def test_one_frame_per_batch_equals_the_frames_of_its_files(files):
    """The batch's DataFrame (columns joined) is, dtypes and all, the per-file frames concatenated."""
    docs, _, season_of = files
    loaded_at = pd.Timestamp("2024-01-01 12:00:00")
    for source in (BOXSCORES, GAMEBOOK, PROPS):
        mine = [(day, doc) for s, day, doc in docs if s == source]
        frames = [parse_document(source, doc, file_path(source, day), loaded_at, season_of=season_of) for day, doc in mine]
        parts = []
        for day, doc in mine:
            cols = parse_columns(source, doc, file_path(source, day), loaded_at, season_of=season_of, positions=True)
            for c in POSITION_COLUMNS:
                del cols[c]
            parts.append(cols)
        want = pd.concat([f for f in frames if len(f)], ignore_index=True)
        pd.testing.assert_frame_equal(_batch_frame(source, parts), want, obj=source)
