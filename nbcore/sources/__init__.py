"""Phase 1 sources: where each scraper's files live in the bucket and what they hold.

Each source module renders its JSON document from phase 2 rows (the demo writes files this
way) and parses a document back into phase 2 rows (the load stage reads files this way).
The JSON Schema of each source is ``docs/schemas/<source>.schema.json`` (also shipped as
``nbcore/schemas``); ``docs/phase1-files.md`` describes the layout for people.
"""
from __future__ import annotations

from datetime import date

SCHEDULE = "nbac_schedule"
BOXSCORES = "bdl_player_boxscores"
GAMEBOOK = "nbac_gamebook_player_stats"
PROPS = "odds_api_player_points_props"
DATED_SOURCES = (BOXSCORES, GAMEBOOK, PROPS)
ALL_SOURCES = (SCHEDULE,) + DATED_SOURCES


def file_path(source: str, day: date | None = None, season_year: int | None = None) -> str:
    """Path of a phase 1 file relative to the bucket root."""
    if source == SCHEDULE:
        if season_year is None:
            raise ValueError("the schedule file is per season: give season_year")
        return f"{SCHEDULE}/{season_year}.json"
    if source not in DATED_SOURCES:
        raise ValueError(f"unknown source {source!r}; sources are {', '.join(ALL_SOURCES)}")
    if day is None:
        raise ValueError(f"{source} files are per game date: give day")
    return f"{source}/{day.isoformat()}.json"


# A marker file that makes the next read of one file fail once (a transient fault the
# demo uses to exercise retry): <bucket>/_faults/<source>/<YYYY-MM-DD>.fail-once
FAULTS_DIR = "_faults"


def fault_marker_path(source: str, day: date) -> str:
    return f"{FAULTS_DIR}/{source}/{day.isoformat()}.fail-once"
