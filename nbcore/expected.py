"""The expected set of games: the schedule's completed games, even before anything is loaded.

Validate, the gate and load measure every table against the schedule. On a first run the
warehouse is empty, so ``nba_raw.nbac_schedule`` says nothing is expected and an empty
warehouse would look complete. Here, every season of the run's scope that the warehouse has no
schedule rows for is read from its phase 1 schedule file (``nbac_schedule/<season>.json`` in
the bucket) instead, so before anything is loaded every completed game is expected (and
missing). A season with neither schedule rows nor a readable schedule file expects nothing;
``unknown_seasons`` names it, so validate and the gate can say so instead of staying silent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from .params import RunParams
from .warehouse import Warehouse

COLUMNS = ["game_id", "game_date", "season_year", "game_type", "home_team", "away_team", "home_score", "away_score"]


@dataclass
class ExpectedGames:
    """Completed games in the run's scope, and where each season's list came from."""

    games: pd.DataFrame  # COLUMNS, game_date as datetime.date
    origin: dict[int, str] = field(default_factory=dict)  # season -> "warehouse" | "<bucket file>" | "none: ..."

    @property
    def from_files(self) -> list[int]:
        return sorted(s for s, o in self.origin.items() if o not in ("warehouse",) and not o.startswith("none"))

    @property
    def unknown_seasons(self) -> dict[int, str]:
        return {s: o for s, o in self.origin.items() if o.startswith("none")}


def expected_games(wh: Warehouse, params: RunParams) -> ExpectedGames:
    """Completed games per the warehouse's schedule, or the schedule files for seasons not loaded."""
    start, end = params.date_bounds()
    found = wh.query_file("validate/expected_games", {"start_date": start, "end_date": end, "seasons": params.season_list})
    loaded = set(wh.query_file("load/schedule_seasons").season_year.astype(int))
    origin = {s: "warehouse" for s in params.season_list if s in loaded}
    frames = [found]
    for season in params.season_list:
        if season in loaded:
            continue
        games, note = schedule_file_games(params, season)
        origin[season] = note
        if games is not None and len(games):
            g = games[(games.game_status == "final") & (games.game_date >= start) & (games.game_date <= end)]
            frames.append(g)
    frames = [f for f in frames if len(f)]
    out = pd.concat([f[[c for c in COLUMNS if c in f.columns]] for f in frames], ignore_index=True) if frames \
        else pd.DataFrame(columns=COLUMNS)
    for c in COLUMNS:
        if c not in out.columns:
            out[c] = None
    out["game_date"] = pd.to_datetime(out.game_date).dt.date
    out["season_year"] = out.season_year.astype(int)
    return ExpectedGames(out[COLUMNS].sort_values(["game_date", "game_id"]).reset_index(drop=True), origin)


def schedule_file_games(params: RunParams, season: int) -> tuple[pd.DataFrame | None, str]:
    """Every game of a season's phase 1 schedule file, or (None, why not)."""
    from .bucket import Bucket, BucketError, FileMissing
    from .sources import SCHEDULE, file_path
    from .sources.checks import decode, load_json
    from .sources.parse import parse_schedule

    rel = file_path(SCHEDULE, season_year=season)
    try:
        bucket = Bucket(params.bucket)
        if not bucket.exists(rel):
            return None, f"none: no schedule rows in the warehouse and no file {bucket.display(rel)}"
        doc = load_json(decode(bucket.read_bytes(rel)))
        games = parse_schedule(doc, rel)
    except (BucketError, FileMissing, OSError) as e:
        return None, f"none: schedule file {rel} cannot be read: {e}"
    except Exception as e:  # noqa: BLE001 - a broken file is load's to report; here it only expects nothing
        return None, f"none: schedule file {rel} cannot be parsed ({type(e).__name__}: {e}); runbook load reports why"
    games["game_date"] = pd.to_datetime(games.game_date).dt.date
    return games, bucket.display(rel)


def schedule_games(wh: Warehouse | None, params: RunParams) -> pd.DataFrame:
    """All completed games of the run's seasons (no date window): for resolving game-type waivers."""
    scoped = params.model_copy(update={"start_date": None, "end_date": None})
    if wh is not None:
        return expected_games(wh, scoped).games
    frames = []
    for season in params.season_list:
        games, _ = schedule_file_games(params, season)
        if games is not None:
            frames.append(games[games.game_status == "final"])
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in COLUMNS if c in out.columns]]


def as_date(v) -> date:
    return v.date() if isinstance(v, pd.Timestamp) else v
