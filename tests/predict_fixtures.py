"""Hand-made inputs for predict / grade tests: feature rows, box scores and schedules written
straight into a fresh DuckDB warehouse, so the right answers are known without derive."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from nbcore import schema
from nbcore.params import RunParams, build_params
from nbcore.warehouse.duckdb import DuckDBWarehouse


def tiny_params(root: Path, **extra) -> RunParams:
    data = {"run_name": "t", "duckdb_path": str(root / "w.duckdb"), "bucket": str(root / "bucket"),
            "archive_dir": str(root / "runs"), "seasons": [2023]}
    data.update(extra)
    return build_params(data, "test", root)


def open_fresh(params: RunParams) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(params.duckdb_path)
    wh.ensure_schema()
    return wh


def put(wh, table: str, rows: list[dict] | pd.DataFrame) -> None:
    frame = pd.DataFrame(rows)
    t = schema.table(table)
    wh.replace_range(t.fqn, frame[t.date_column].min(), frame[t.date_column].max(), frame=frame)


def feature(game_id: str, day: date, player: str, avg10, line, **kw) -> dict:
    row = {"game_id": game_id, "game_date": day, "season_year": 2023, "game_type": "regular",
           "player_lookup": player, "team_abbr": "AAA", "opponent_team_abbr": "BBB", "is_home": True,
           "feature_version": "v2-test", "features_present": 10, "data_quality_score": 1.0,
           "points_avg_last_5": avg10, "points_avg_last_10": avg10, "points_avg_season": avg10,
           "points_std_season": 5.0, "minutes_avg_last_10": 30.0, "fatigue_score": 1.0, "matchup_factor": 1.0,
           "pace_factor": 1.0, "days_rest": 2, "is_back_to_back": False, "points_line": line}
    row.update(kw)
    return row


def game(game_id: str, day: date, status: str = "final", game_type: str = "regular") -> dict:
    return {"game_id": game_id, "game_date": day, "season_year": 2023, "game_type": game_type,
            "game_status": status, "home_team": "AAA", "away_team": "BBB"}


def box(game_id: str, day: date, player: str, points: int) -> dict:
    return {"game_id": game_id, "game_date": day, "season_year": 2023, "game_type": "regular",
            "player_lookup": player, "team_abbr": "AAA", "opponent_team_abbr": "BBB", "is_home": True,
            "minutes": 30.0, "points": points}


def synthetic_league(wh, start: date = date(2023, 11, 1), days: int = 70, players: int = 24, seed: int = 3) -> list[date]:
    """One game a day, ``players`` players with a hidden rate; features are noisy views of the
    rate, the line is a sharper one, actual points scatter around rate x matchup x home."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(6, 28, players)
    feats, boxes, games = [], [], []
    dates = [start + timedelta(days=i) for i in range(days)]
    for i, d in enumerate(dates):
        gid = f"G{i:04d}"
        games.append(game(gid, d))
        matchup = float(rng.normal(1.0, 0.05))
        for p in range(players):
            name = f"p{p:02d}"
            home = bool((p + i) % 2)
            mu = rate[p] * matchup * (1.015 if home else 0.985)
            avg = float(rate[p] * rng.normal(1, 0.1))
            line = float(np.round(mu * rng.normal(1, 0.05) * 2) / 2) if p % 4 else None
            feats.append(feature(gid, d, name, round(avg, 2), line, matchup_factor=round(matchup, 3), is_home=home))
            if p % 7 != 3 or i % 5:  # a few players sit out now and then
                boxes.append(box(gid, d, name, int(max(0, round(mu * rng.normal(1, 0.2))))))
    put(wh, "ml_feature_store_v2", feats)
    put(wh, "player_game_summary", boxes)
    put(wh, "nbac_schedule", games)
    return dates
