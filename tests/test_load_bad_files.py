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


def minutes_infinity(doc):
    p = _first_active(doc)
    p["minutes"] = float("inf")
    return json.dumps(doc, ensure_ascii=False).encode()  # json.dumps writes Infinity, as a careless scraper would


def minutes_1e308(doc):
    _first_active(doc)["minutes"] = 1e308
    return _dump(doc)


def line_infinity(doc):
    doc["events"][0]["lines"][1]["line"] = float("inf")
    return json.dumps(doc).encode()


def line_1e308(doc):
    doc["events"][0]["lines"][0]["line"] = 1e308
    return _dump(doc)


def price_nan(doc):
    doc["events"][0]["lines"][2]["over_price"] = float("nan")
    return json.dumps(doc).encode()


def points_300(doc):
    p = doc["games"][0]["players"][0]
    made = 150 - p["fgm"]  # consistent with 2*FGM + 3PM + FTM, so only the maximum can catch it
    p.update(pts=p["pts"] + 2 * made, fgm=p["fgm"] + made, fga=p["fga"] + made)
    return _dump(doc)


def steals_1e308(doc):
    _first_active(doc)["stats"]["stl"] = 1e308
    return _dump(doc)


def integer_10_30(doc):
    doc["games"][0]["players"][1]["blk"] = 10 ** 30
    return _dump(doc)


def player_id_10_30(doc):
    doc["games"][1]["players"][0]["person_id"] = 10 ** 30
    return _dump(doc)


def duplicate_key(doc):
    raw = _dump(doc)
    first = doc["games"][0]["players"][0]
    key = b'"pts": %d' % first["pts"]
    return raw.replace(key, key + b', "pts": %d' % (first["pts"] + 10), 1)


def score_mismatch(doc):
    p = doc["games"][0]["players"][0]  # +2 points, consistent in the row, so the team total no longer matches
    p.update(pts=p["pts"] + 2, fgm=p["fgm"] + 1, fga=p["fga"] + 1)
    return _dump(doc)


def props_invented_players(doc):
    """Two hundred invented players for the home team of one game: every row is well-formed."""
    event = doc["events"][0]
    template = event["lines"][0]
    event["lines"] += [{**template, "player_name": f"Invented Player {i}", "team": event["home_team"]} for i in range(200)]
    return _dump(doc)


def props_600k_lines(doc):
    """A prop file of 600,000 lines for one date (about 90 MB), as the hostile-input round sent."""
    event = doc["events"][0]
    template = event["lines"][0]
    event["lines"] += [{**template, "player_name": f"Junk Player {i}", "team": event["home_team"]} for i in range(600_000)]
    return _dump(doc)


def symlink_outside(doc):
    return ("symlink", _dump(doc))  # the fixture writes this outside the bucket and links to it


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
    # non-finite and implausible numbers (issue 13): refused at parse time or by the schema's maxima
    ("minutes_infinity", GAMEBOOK, minutes_infinity, "json", ["row", "minutes is Infinity, not a number"]),
    ("minutes_1e308", GAMEBOOK, minutes_1e308, "schema", ["row", "minutes is 1e+308, more than is plausible (maximum 70)"]),
    ("line_infinity", PROPS, line_infinity, "json", ["row 2", "line is Infinity, not a number"]),
    ("line_1e308", PROPS, line_1e308, "schema", ["row 1", "line is 1e+308, more than is plausible"]),
    ("price_nan", PROPS, price_nan, "json", ["row 3", "over_price is NaN, not a number"]),
    ("points_300", BOXSCORES, points_300, "schema", ["row 1", "points is 30", "more than is plausible (maximum 150)"]),
    ("steals_1e308", GAMEBOOK, steals_1e308, "schema", ["row", "stats: stl is 1e+308, more than is plausible (maximum 15)"]),
    ("integer_10_30", BOXSCORES, integer_10_30, "schema", ["row 2", "blk is 1000000000000000000000000000000",
                                                          "more than is plausible"]),
    ("player_id_10_30", GAMEBOOK, player_id_10_30, "schema", ["row 1", "person_id is 1000000000000000000", "plausible"]),
    ("duplicate_key", BOXSCORES, duplicate_key, "json", ["row 1", "key 'pts' is given twice"]),
    ("score_mismatch", BOXSCORES, score_mismatch, "rules", ["players' points add up to", "final score"]),
    ("symlink_outside", BOXSCORES, symlink_outside, "read", ["symbolic link", "outside the bucket"]),
    # issue 24: junk that passes every per-row rule is refused by its volume
    ("props_invented_players", PROPS, props_invented_players, "rules", ["players of", "more than any team lists (20)"]),
    ("props_600k_lines", PROPS, props_600k_lines, "read", ["MB, larger than any real phase 1 file (at most 16 MB)"]),
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
        day = pool[0] if pool else next(d for d in days[5 + (i * 2) % (len(days) - 10):] + days[5:]
                                        if d not in used[source] and d not in holes[source])
        used[source].add(day)
        data = mutate(_doc(bucket, source, day))
        target = bucket / file_path(source, day)
        if isinstance(data, tuple):  # ("symlink", bytes): the file lives outside the bucket, a link points at it
            outside = root / "elsewhere" / target.name
            outside.parent.mkdir(exist_ok=True)
            outside.write_bytes(data[1])
            target.unlink()
            target.symlink_to(outside)
        else:
            target.write_bytes(data)
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


def test_corpus_has_at_least_twenty_five_kinds():
    assert len(CASES) + 2 >= 25
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.slow  # one reload of the whole small demo (the corpus)
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


@pytest.mark.slow  # one reload of the whole small demo (the corpus)
def test_unexpected_extra_files_are_failures_the_gate_blocks_on(corpus):
    result, gate = corpus["result"], corpus["gate"]
    for name, words in (("extra_dated_file", "the schedule has no completed games"),
                        ("extra_misnamed_file", "not named <YYYY-MM-DD>.json")):
        source, day = corpus["placed"][name]
        failed = [o for o in result.failed if o.source == source and o.date == day and words in o.reason]
        assert failed, name
        assert any(p.check == "no unexpected files" and p.blocking and words in p.detail for p in gate.problems), name


@pytest.mark.slow  # one reload of the whole small demo (the corpus)
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


@pytest.mark.slow  # one reload of the whole small demo (the corpus)
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


# -- schedule files: a game belongs to one season ------------------------------------------------

def _schedule_doc(bucket, season):
    return json.loads((bucket / f"nbac_schedule/{season}.json").read_text())


def test_a_game_listed_in_two_seasons_schedules_is_refused_and_nothing_is_stored_twice(demo_copy):
    params, _ = demo_copy
    bucket = __import__("pathlib").Path(params.bucket)
    doc23, doc24 = _schedule_doc(bucket, 2023), _schedule_doc(bucket, 2024)
    stolen = copy.deepcopy(doc23["games"][-1])  # a 2023-24 game, copied into the 2024-25 file with a 2024-25 date
    busy = {(g["game_date"], t) for g in doc24["games"] for t in (g["home_team"], g["away_team"])}
    stolen["game_date"] = next(d for d in sorted({g["game_date"] for g in doc24["games"]})  # a day both teams are free
                               if (d, stolen["home_team"]) not in busy and (d, stolen["away_team"]) not in busy)
    doc24["games"].append(stolen)
    (bucket / "nbac_schedule/2024.json").write_text(json.dumps(doc24))
    with open_warehouse(params) as wh:
        before = wh.query("SELECT season_year, COUNT(*) AS n FROM nba_raw.nbac_schedule GROUP BY 1 ORDER BY 1")
    result = run_load(params.model_copy(update={"tables": ["nbac_schedule"]}), progress=False)
    failed = {o.source: o for o in result.failed}
    reason = failed["nbac_schedule"].reason
    assert failed["nbac_schedule"].stage == "rules" and failed["nbac_schedule"].date == date(2024, 10, 1)
    assert f"game {stolen['game_id']} is already in the schedule of season 2023 (nbac_schedule/2023.json)" in reason
    assert "remove it from one of the two files" in reason
    with open_warehouse(params) as wh:
        after = wh.query("SELECT season_year, COUNT(*) AS n FROM nba_raw.nbac_schedule GROUP BY 1 ORDER BY 1")
        dups = wh.query("SELECT game_id FROM nba_raw.nbac_schedule GROUP BY game_id HAVING COUNT(*) > 1")
    assert after.equals(before) and dups.empty  # the refused file changed nothing


def _code(first: str, i: int) -> str:
    """A made-up three-letter team code (676 of them per first letter)."""
    return f"{first}{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}"


@pytest.mark.parametrize("extra, words", [
    (600_000, ["MB, larger than any real phase 1 file"]),  # refused unread
    (3_000, ["3,165 games for season 2024-25, more than a season has (1,400",
             "games on 2024-10-22, more than 15 (30 teams, one game each a day)"]),
])
@pytest.mark.slow
def test_a_schedule_padded_with_junk_games_is_refused_and_the_advised_load_clears_the_gate(demo_copy, extra, words):
    from pathlib import Path

    params, _ = demo_copy
    bucket = Path(params.bucket)
    good = (bucket / "nbac_schedule/2024.json").read_bytes()
    doc = json.loads(good)
    first = doc["games"][0]
    doc["games"] += [{**first, "game_id": f"09{i:08d}", "home_team": _code("Q", i), "away_team": _code("Z", i),
                      "game_status": "scheduled", "home_score": None, "away_score": None} for i in range(extra)]
    (bucket / "nbac_schedule/2024.json").write_text(json.dumps(doc))
    with open_warehouse(params) as wh:
        before = wh.query("SELECT season_year, COUNT(*) AS n FROM nba_raw.nbac_schedule GROUP BY 1 ORDER BY 1")
    result = run_load(params, progress=False)
    failed = {o.source: o for o in result.failed}
    assert "nbac_schedule" in failed, result.summary_table()
    for w in words:
        assert w in failed["nbac_schedule"].reason, failed["nbac_schedule"].reason
    with open_warehouse(params) as wh:
        after = wh.query("SELECT season_year, COUNT(*) AS n FROM nba_raw.nbac_schedule GROUP BY 1 ORDER BY 1")
    assert after.equals(before)  # not one junk game stored
    # the correct file back: the plain load the gate advises (no --reload) clears what it reported
    (bucket / "nbac_schedule/2024.json").write_bytes(good)
    assert run_load(params, progress=False).ok
    assert run_gate(params, archive=RunArchive.create(params, "after-fix")).status == "passed"


@pytest.mark.parametrize("game_date, ok", [("2024-09-30", False), ("2024-06-20", True), ("2023-07-01", True),
                                           ("2023-06-30", False)])
def test_a_game_dated_outside_its_season_is_refused_even_in_the_right_year(game_date, ok):
    from nbcore.sources import SCHEDULE
    from nbcore.sources.checks import check_schedule_rules
    from nbcore.sources.parse import parse_document

    doc = {"source": SCHEDULE, "season_year": 2023, "games": [
        {"game_id": "0022300001", "game_date": game_date, "game_type": "regular", "game_status": "final",
         "home_team": "BOS", "away_team": "NYK", "home_score": 110, "away_score": 101, "periods": 4}]}
    rows = parse_document(SCHEDULE, doc, "nbac_schedule/2023.json", positions=True)
    if ok:
        check_schedule_rules(doc, rows, 2023)
        return
    with pytest.raises(FileProblem) as e:
        check_schedule_rules(doc, rows, 2023)
    assert f"game 0022300001 dated {game_date} is outside season 2023-24 (July 2023 to June 2024)" in e.value.reason


@pytest.mark.parametrize("text, words", [
    ('{"a": 1, "a": 2}', "key 'a' is given twice"),
    ('{"games": [{"game_id": "0022300001", "players": [{"name": "A B", "min": "1:00", "min": "2:00"}]}]}',
     "game 0022300001, row 1 (A B): key 'min' is given twice"),
    ('{"x": NaN}', "x is NaN, not a number"),
    ('{"x": -Infinity}', "x is -Infinity, not a number"),
])
def test_duplicate_keys_and_non_finite_numbers_are_refused_where_they_are(text, words):
    with pytest.raises(FileProblem) as e:
        load_json(text)
    assert e.value.stage == "json" and words in e.value.reason


def test_a_huge_integer_past_the_schema_is_named_not_an_overflow_error(small_demo):
    """Even without the schema's maxima (rules run on parsed rows), 10**30 is a named problem."""
    from nbcore.sources.checks import _stat_rules
    from nbcore.sources.parse import parse_document

    params, built = small_demo
    day = built.league.game_dates[3]
    doc = _doc(__import__("pathlib").Path(params.bucket), BOXSCORES, day)
    doc["games"][0]["players"][1]["stl"] = 10 ** 30
    rows = parse_document(BOXSCORES, doc, "x.json", positions=True)
    problems = _stat_rules(BOXSCORES, rows)
    name = doc["games"][0]["players"][1]["player"]["name"]
    assert problems == [f"game {doc['games'][0]['game_id']}, row 2 ({name}): stl is 1000000000000000000000000000000, "
                        f"not a count a game can have"]
