"""Helpers for the BigQuery tests that run a small "backfill" of box-score days on the
loopback server (``test_bigquery_lease.py``, ``test_bigquery_pipelined.py``): a warehouse per
dataset suffix, and a day's box-score rows."""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from nbcore import schema
from nbcore.params import build_params
from nbcore.warehouse import open_warehouse

BOX = "nba_raw.bdl_player_boxscores"
HIST = "nba_reference.processor_run_history"


def make_wh(server, project: str, suffix: str, run_id: str = "run-1"):
    """A BigQuery warehouse on the loopback server, in datasets of its own (``suffix``)."""
    params = build_params({"backend": "bigquery", "bigquery": {
        "project": project, "dataset_suffix": suffix, "api_endpoint": server.endpoint}})
    wh = open_warehouse(params, run_id=run_id, stage="derive")
    wh.ensure_schema()
    return wh


def box_rows(day: date, n: int) -> pd.DataFrame:
    """``n`` players' box-score rows of one game on ``day``."""
    t = schema.table(BOX)
    rows = []
    for i in range(n):
        r = {c: None for c in t.columns}
        r.update(game_id=f"g{day:%m%d}", game_date=day, season_year=2023, player_id=i, player_lookup=f"p{i}",
                 player_name=f"Player {i}", team_abbr="BOS", points=3 * i + day.day, minutes="30:00",
                 loaded_at=datetime(2024, 5, 1, 12, 0))
        rows.append(r)
    return pd.DataFrame(rows)
