"""A corpus of bad phase 1 files: each one fails with a clear reason, every other date loads,
no partial date is left behind, and the gate blocks the run on it.

All the bad files go into one copy of the small demo bucket at once (each on its own source
and date) and one ``reload`` run loads every date of the range, so "every other date loaded"
is checked against the whole range, not a handful of dates.
"""
from __future__ import annotations

import copy
import json
from datetime import date, timedelta

import pandas as pd
import pytest

from nbcore import schema
from nbcore.archive import RunArchive
from nbcore.gate import GateBlocked, run_gate
from nbcore.load import run_load
from nbcore.sources import BOXSCORES, DATED_SOURCES, GAMEBOOK, PROPS, file_path
from nbcore.sources.checks import FileProblem, check_schema, decode, describe_location, load_json
from nbcore.warehouse import open_warehouse


def _doc(bucket, source, day):
    return json.loads((bucket / file_path(source, day)).read_text())


def _first_active(doc):
    return next(p for p in doc["games"][0]["players"] if p.get("stats") or "pts" in p)


# Each kind: (name, source, mutate(doc or bytes) -> bytes, expected stage, expected words in the reason)
def _dump(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def invalid_json(doc):
    return _dump(doc).replace(b'"games":', b'"games";', 1)


def empty(doc):
    return b""


def truncated(doc):
    raw = _dump(doc)
    return raw[: int(len(raw) * 0.6)]


def missing_field(doc):
    del doc["games"][1]["players"][2]["pts"]
    return _dump(doc)


def wrong_type(doc):
    doc["games"][0]["players"][0]["pts"] = str(doc["games"][0]["players"][0]["pts"])
    return _dump(doc)


def negative_minutes(doc):
    doc["games"][0]["players"][3]["min"] = "-12:00"
    return _dump(doc)


def duplicate_player(doc):
    players = doc["games"][0]["players"]
    players.append(copy.deepcopy(players[1]))
    return _dump(doc)


def unknown_team(doc):
    doc["games"][0]["players"][4]["team_tricode"] = "XYZ"
    return _dump(doc)


def date_mismatch(doc):
    doc["game_date"] = (date.fromisoformat(doc["game_date"]) - timedelta(days=1)).isoformat()
    return _dump(doc)


def game_not_in_schedule(doc):
    doc["events"][0]["game_id"] = "0029999999"
    return _dump(doc)


def latin1(doc):
    doc["games"][0]["players"][0]["name"] = "José Calderón"
    return json.dumps(doc, ensure_ascii=False).encode("latin-1", errors="replace")


def utf16(doc):
    return json.dumps(doc, ensure_ascii=False).encode("utf-16")


def points_inconsistent(doc):
    p = _first_active(doc)
    p["stats"]["points"] += 1
    return _dump(doc)


def partial_file(doc):
    doc["games"] = doc["games"][1:]
    return _dump(doc)


def wrong_source(doc):
    doc["source"] = GAMEBOOK  # a gamebook header saved in the box-score folder
    return _dump(doc)


def negative_line(doc):
    doc["events"][0]["lines"][0]["line"] = -4.5
    return _dump(doc)


CASES = [
    # name, source, mutate, stage, words in the reason
    ("invalid_json", BOXSCORES, invalid_json, "json", ["invalid JSON at line 1 column"]),
    ("empty", BOXSCORES, empty, "decode", ["file is empty (0 bytes)"]),
    ("truncated", GAMEBOOK, truncated, "json", ["truncated"]),
    ("missing_field", BOXSCORES, missing_field, "schema", ["row 3", "missing field 'pts'"]),
    ("wrong_type", BOXSCORES, wrong_type, "schema", ["row 1", "points should be integer, got a string"]),
    ("negative_minutes", BOXSCORES, negative_minutes, "schema", ["row 4", "minutes is negative (-12:00)"]),
    ("duplicate_player", BOXSCORES, duplicate_player, "rules", ["appears 2 times"]),
    ("unknown_team", GAMEBOOK, unknown_team, "rules", ["row 5", "unknown team 'XYZ'"]),
    ("date_mismatch", GAMEBOOK, date_mismatch, "rules", ["but its path says"]),
    ("game_not_in_schedule", PROPS, game_not_in_schedule, "rules", ["game 0029999999", "is not in the schedule"]),
    ("latin1", BOXSCORES, latin1, "decode", ["not valid UTF-8", "latin-1"]),
    ("utf16", GAMEBOOK, utf16, "decode", ["UTF-16"]),
    ("points_inconsistent", GAMEBOOK, points_inconsistent, "rules", ["2*FGM + 3PM + FTM"]),
    ("partial_file", GAMEBOOK, partial_file, "rules", ["no rows for game", "a partial date is never loaded"]),
    ("wrong_source", BOXSCORES, wrong_source, "schema", ["source is \"nbac_gamebook_player_stats\""]),
    ("negative_line", PROPS, negative_line, "schema", ["line is -4.5, out of range"]),
]


@pytest.fixture(scope="module")
def corpus(small_demo, tmp_path_factory):
    """One reload over a copy of the small demo whose bucket holds every bad file of CASES."""
    import shutil

    from conftest import small_params

    _, built = small_demo
    root = tmp_path_factory.mktemp("bad_files")
    params0, _ = small_demo
    shutil.copy(params0.duckdb_path, root / "warehouse.duckdb")
    shutil.copytree(params0.bucket, root / "bucket")
    params = small_params(root, reload=True)
    bucket = root / "bucket"
    fault_days = {d for _, d in built.holes.transient_faults}
    holes = {s: set(built.holes.raw_missing[s]) for s in DATED_SOURCES}
    # one date per case, alternating hole dates (rows must stay absent) and loaded dates (rows must stay as they were)
    days = [d for d in built.league.game_dates if d not in fault_days]
    used: dict[str, set] = {s: set() for s in DATED_SOURCES}
    placed = {}
    for i, (name, source, mutate, _, _) in enumerate(CASES):
        pool = sorted(holes[source] - used[source] - fault_days) if i % 3 == 0 else []
        day = pool[0] if pool else next(d for d in days[5 + i * 3:] if d not in used[source] and d not in holes[source])
        used[source].add(day)
        (bucket / file_path(source, day)).write_bytes(mutate(_doc(bucket, source, day)))
        placed[name] = (source, day)
    # an unexpected extra file: a box-score file for a date without games, and a misnamed copy
    game_days = set(built.league.game_dates)
    off_day = next(d for d in (days[10] + timedelta(days=k) for k in range(1, 30)) if d not in game_days)
    clean_day = next(d for d in days if d not in used[BOXSCORES] and d not in holes[BOXSCORES])
    (bucket / file_path(BOXSCORES, off_day)).write_bytes((bucket / file_path(BOXSCORES, clean_day)).read_bytes())
    (bucket / BOXSCORES / f"{clean_day} (copy).json").write_bytes(b"{}")
    placed["extra_dated_file"] = (BOXSCORES, off_day)
    placed["extra_misnamed_file"] = (BOXSCORES, clean_day)

    with open_warehouse(params) as wh:
        before = _counts(wh)
    archive = RunArchive.create(params, "bad-files")
    result = run_load(params, archive=archive, progress=False)
    with open_warehouse(params) as wh:
        after = _counts(wh)
    gate_archive = RunArchive.create(params, "bad-files-gate")
    with pytest.raises(GateBlocked) as blocked:
        run_gate(params, archive=gate_archive)
    return {"params": params, "placed": placed, "result": result, "before": before, "after": after, "holes": holes,
            "gate": blocked.value.result, "archive": archive, "gate_archive": gate_archive, "off_day": off_day}


def _counts(wh) -> dict[tuple[str, date], int]:
    out = {}
    for s in DATED_SOURCES:
        frame = wh.query(f"SELECT game_date, COUNT(*) AS n FROM {schema.table(s).fqn} GROUP BY game_date")
        for r in frame.itertuples(index=False):
            out[(s, pd.Timestamp(r.game_date).date())] = int(r.n)
    return out


def test_corpus_has_at_least_twelve_kinds():
    assert len(CASES) + 2 >= 12
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,source,mutate,stage,words", CASES, ids=[c[0] for c in CASES])
def test_bad_file_fails_with_a_clear_reason_and_leaves_no_partial_date(corpus, name, source, mutate, stage, words):
    placed_source, day = corpus["placed"][name]
    outcome = next(o for o in corpus["result"].outcomes if (o.source, o.date) == (source, day))
    assert outcome.state == "failed", f"{name}: {outcome}"
    assert outcome.stage == stage, outcome.reason
    for w in words:
        assert w in outcome.reason, f"{name}: {w!r} not in {outcome.reason!r}"
    assert outcome.attempts == 2  # retried once, then the stage moved on
    # no partial date: the rows of that date are exactly what they were before the load
    assert corpus["after"].get((source, day), 0) == corpus["before"].get((source, day), 0)
    if day in corpus["holes"][source]:
        assert corpus["after"].get((source, day), 0) == 0
    # the failure log says the same, with a date, the file and the attempt
    log = corpus["result"].failures_frame()
    mine = log[(log.source == source) & (log.date == day.isoformat())]
    assert list(mine.attempt) == [1, 2] and set(mine.stage) == {stage}
    assert set(mine.file) == {file_path(source, day)}
    # the gate names it when its source is required (prop lines are reported, not blocking)
    found = [p for p in corpus["gate"].problems if (p.source, p.date) == (source, day)]
    assert found, f"the gate does not mention {source} {day}"
    assert all(p.blocking == (source != PROPS) for p in found)


def test_unexpected_extra_files_are_failures_the_gate_blocks_on(corpus):
    result, gate = corpus["result"], corpus["gate"]
    for name, words in (("extra_dated_file", "the schedule has no completed games"),
                        ("extra_misnamed_file", "not named <YYYY-MM-DD>.json")):
        source, day = corpus["placed"][name]
        failed = [o for o in result.failed if o.source == source and o.date == day and words in o.reason]
        assert failed, name
        assert any(p.check == "no unexpected files" and p.blocking and words in p.detail for p in gate.problems), name


def test_every_other_date_loaded(corpus):
    result = corpus["result"]
    bad = set(corpus["placed"].values())
    loaded = {(o.source, o.date) for o in result.by_state("loaded")}
    failed = {(o.source, o.date) for o in result.failed}
    assert failed == bad
    attempted = {(o.source, o.date) for o in result.outcomes if o.source in DATED_SOURCES}
    assert len(attempted) > 150  # reload: every date of every source in range
    waived = {(o.source, o.date) for o in result.by_state("waived")}  # the demo's prop gaps (params/waivers.example.yaml)
    assert attempted - bad - waived <= loaded
    # every hole date that was not given a bad file is now loaded
    for s, days in corpus["holes"].items():
        for d in days - {d for (src, d) in bad if src == s}:
            assert corpus["after"].get((s, d), 0) > 0, (s, d)


def test_gate_blocks_with_the_retry_command(corpus):
    gate, archive = corpus["gate"], corpus["archive"]
    record = corpus["gate_archive"].stage_record("gate")
    assert record["status"] == "blocked" and record["gate"] == "phase2_complete"
    assert record["missing"] and all(m["blocking"] for m in record["missing"])
    assert any("runbook load --params" in c for c in record["retry_commands"])
    assert "blocked" in record["reason"]
    assert gate.status == "blocked"
    assert archive.stage_record("load")["failed"] == len(corpus["placed"])


def test_schema_errors_point_at_the_row():
    doc = {"source": BOXSCORES, "game_date": "2024-04-03", "games": [
        {"game_id": "0022301141", "home_team": "ATL", "away_team": "PHI",
         "players": [{"player": {"id": 1, "name": "A B"}, "team": "ATL", "min": "-3:00"}]}]}
    with pytest.raises(FileProblem) as e:
        check_schema(BOXSCORES, doc)
    assert e.value.stage == "schema"
    assert "game 0022301141, row 1 (A B): minutes is negative (-3:00)" in e.value.reason
    assert "game 0022301141, row 1 (A B): missing fields 'pts', 'fgm'" in e.value.reason  # one reason per row
    assert describe_location(doc, ["games", 0, "players", 0, "pts"]) == ("game 0022301141, row 1 (A B)", "pts")


@pytest.mark.parametrize("raw,words", [
    (b"   \n", "whitespace"), (b"\xef\xbb\xbf{}", None), (b'{"a": [1, 2', "truncated"), (b"[1,,2]", "invalid JSON"),
])
def test_decode_and_json_edge_cases(raw, words):
    if words is None:
        assert load_json(decode(raw)) == {}
        return
    with pytest.raises(FileProblem) as e:
        load_json(decode(raw))
    assert words in e.value.reason
