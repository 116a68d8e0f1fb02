"""Phase 1 documents: JSON Schemas, and parse(render(rows)) == rows."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nbcore import schema
from nbcore.demo.build import raw_frames
from nbcore.demo.league import generate_league
from nbcore.params import build_params
from nbcore.sources import ALL_SOURCES, SCHEDULE, file_path
from nbcore.sources.checks import SCHEMA_DIR, check_schema, json_schema
from nbcore.sources.parse import parse_document, player_lookup
from nbcore.sources.render import RENDERERS, render_schedule
from nbcore.waivers import load_waivers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def league():
    return generate_league(7, "small")


def _norm(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    cols = [c for c in schema.table(table).columns if c != "loaded_at"]
    out = frame[cols].astype("string").fillna("<NULL>")
    return out.sort_values(cols).reset_index(drop=True)


def test_parse_of_render_gives_back_the_raw_rows(league):
    expected = raw_frames(league)
    final = league.schedule[league.schedule.game_status == "final"]
    by_day = dict(tuple(final.groupby("game_date")))
    got = {SCHEDULE: pd.concat([
        parse_document(SCHEDULE, json.loads(json.dumps(render_schedule(int(s), g))), file_path(SCHEDULE, season_year=int(s)))
        for s, g in league.schedule.groupby("season_year")])}
    for source, frame in (("bdl_player_boxscores", league.boxscores), ("nbac_gamebook_player_stats", league.gamebook),
                          ("odds_api_player_points_props", league.props)):
        rows = dict(tuple(frame.groupby("game_date")))
        docs = [(d, json.loads(json.dumps(RENDERERS[source](d, by_day[d], rows.get(d, frame.iloc[:0])), ensure_ascii=False))) for d in sorted(by_day)]
        for _, doc in docs:
            check_schema(source, doc)  # what render writes is what the schema allows
        parsed = [parse_document(source, doc, file_path(source, d)) for d, doc in docs]
        got[source] = pd.concat([f for f in parsed if len(f)])  # a night with no lines parses to no rows
        assert list(got[source].columns) == list(schema.table(source).columns)  # exactly the table's columns
    for table, frame in expected.items():
        assert len(got[table]) == len(frame), table
        pd.testing.assert_frame_equal(_norm(got[table], table), _norm(frame, table), obj=table)


def test_schemas_are_valid_and_shipped_identically():
    import jsonschema

    docs = sorted((ROOT / "docs" / "schemas").glob("*.schema.json"))
    assert {p.name.removesuffix(".schema.json") for p in docs} == set(ALL_SOURCES)
    for p in docs:
        assert (SCHEMA_DIR / p.name).read_text() == p.read_text(), f"nbcore/schemas/{p.name} differs from docs/schemas"
        jsonschema.Draft202012Validator.check_schema(json_schema(p.name.removesuffix(".schema.json")))


def test_player_lookup_is_the_platform_key():
    assert player_lookup("Luka Dončić") == "lukadoncic"
    assert player_lookup("Shai Porter Jr.") == "shaiporterjr"
    assert player_lookup("De'Aaron Fox") == "deaaronfox"


def test_example_waiver_file_is_valid(tmp_path):
    params = build_params({"waivers": str(ROOT / "params" / "waivers.example.yaml")}, "t", tmp_path)
    waivers = load_waivers(params)
    assert waivers and all(w.reason and w.approved_by for w in waivers)
