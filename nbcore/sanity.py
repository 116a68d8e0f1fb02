"""Sanity checks for validate and the gate: key health, plausibility, reconciliation.

Every check yields *findings*: one row per game (or date, or table when the problem has no
game), each with a severity:

* ``block``: cannot be true (a duplicate key, points that are not 2*FGM + 3PM + FTM, a team
  with fewer than five players, players' points that do not add up to the final score, phase 3
  rows that do not match phase 2). The gate blocks on these for a required source.
* ``warn``: unusual for this source and season, but real games do it (a short-handed game with
  14 players who appear). Plausible ranges are calibrated on the data itself: the median and
  the median absolute deviation of players per game, per table and season (robust: a few odd
  games do not move them), so no fixed range rejects a real game.

Each finding can be waived where it is found, a game or a date (``nbcore.waivers``, with
``check``); a waived finding is listed with its reason and approver and no longer counts.
"""
from __future__ import annotations

from datetime import date
from typing import Optional

import numpy as np
import pandas as pd

from . import schema
from .sources.checks import MAX_PLAYERS_PER_TEAM
from .sqlfiles import render_template
from .warehouse import Warehouse
from .waivers import WaiverIndex

CHECK_COLUMNS = ["check", "table", "severity", "violations", "waived", "example"]
FINDING_COLUMNS = ["check", "table", "severity", "season_year", "game_date", "game_id", "detail", "waived_by",
                   "waiver_reason", "approved_by"]

PLAYER_TABLES = ("bdl_player_boxscores", "nbac_gamebook_player_stats", "player_game_summary")
BOX_TABLES = ("bdl_player_boxscores", "nbac_gamebook_player_stats")
# a team needs five players on the floor; no team dresses (or lists) more than twenty
TEAM_PLAYERS = (5, MAX_PLAYERS_PER_TEAM)
ROBUST_Z = 3.5  # |x - median| / (1.4826 * MAD) above this is an outlier (Iglewicz & Hoaglin)
MIN_CALIBRATION_GAMES = 30  # fewer games in a season: calibrate on the table's other seasons too


def empty_checks() -> pd.DataFrame:
    return pd.DataFrame(columns=CHECK_COLUMNS).astype({"violations": int, "waived": int})


def empty_findings() -> pd.DataFrame:
    return pd.DataFrame(columns=FINDING_COLUMNS)


def _as_date(v) -> Optional[date]:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return None
    return v.date() if isinstance(v, pd.Timestamp) else v


def run_sanity_checks(wh: Warehouse, params, p: dict, expected: pd.DataFrame | None = None,
                      waivers: WaiverIndex | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(checks, findings): one summary row per check x table (x severity), and every finding."""
    rng = {"start_date": p["start_date"], "end_date": p["end_date"]}
    season_of = dict(zip(expected.game_id, expected.season_year.astype(int))) if expected is not None and len(expected) else {}
    selected = lambda name: params.table_selected(name)  # noqa: E731
    checks: list[dict] = []
    findings: list[dict] = []

    def add(check: str, table: str, severity: str, found: list[dict], example_if_none: str | None = None) -> None:
        for f in found:
            f.update(check=check, table=table, severity=severity)
            f.setdefault("season_year", season_of.get(f.get("game_id")))
            w = waivers.for_game(table, f["game_id"], f.get("game_date"), check) if waivers is not None and f.get("game_id") \
                else None
            f["waived_by"] = f"{w.reason} (approved by {w.approved_by})" if w is not None else None
            f["waiver_reason"], f["approved_by"] = (w.reason, w.approved_by) if w is not None else (None, None)
        open_ = [f for f in found if f["waived_by"] is None]
        checks.append({"check": check, "table": table, "severity": severity, "violations": len(open_),
                       "waived": len(found) - len(open_), "example": open_[0]["detail"] if open_ else example_if_none})
        findings.extend(found)

    # 1. key health: duplicates and NULLs in every tracked table
    for t in schema.tracked_tables():
        if not selected(t.name):
            continue
        k = wh.query(render_template("validate/key_checks", table=t.fqn, date_column=t.date_column, key=", ".join(t.key),
                                     null_condition=" IS NULL OR ".join(t.key) + " IS NULL"), rng).iloc[0]
        add("duplicate keys", t.name, "block",
            [{"detail": f"{int(k.duplicate_keys)} key(s) occur more than once, e.g. {k.duplicate_example}"}] if k.duplicate_keys else [])
        add("NULL key columns", t.name, "block",
            [{"detail": f"{int(k.null_keys)} row(s) with a NULL key, e.g. {k.null_example}"}] if k.null_keys else [])

    # 2. players per game: impossible per team (block), unusual for the source and season (warn)
    ppt = wh.query_file("validate/players_per_game", rng)
    ppt["game_date"] = pd.to_datetime(ppt.game_date).dt.date
    for name in PLAYER_TABLES:
        if not selected(name):
            continue
        sub = ppt[ppt.table_name == name]
        lo, hi = TEAM_PLAYERS
        bad = sub[(sub.players < lo) | (sub.players > hi)]
        add("players per game", name, "block",
            [{"game_id": r.game_id, "game_date": r.game_date,
              "detail": f"{r.game_id} on {r.game_date}: {r.team_abbr} has {int(r.players)} players (a team has {lo} to {hi})"}
             for r in bad.itertuples(index=False)])
        per_game = sub.groupby(["game_id", "game_date"], as_index=False).players.sum()
        per_game["season_year"] = per_game.game_id.map(season_of)
        found, ranges = [], []
        for season, games in per_game.groupby(per_game.season_year.fillna(-1)):
            basis = games if len(games) >= MIN_CALIBRATION_GAMES else per_game
            glo, ghi = plausible_range(basis.players)
            ranges.append(f"{int(season)}: [{glo:g}, {ghi:g}]" if season != -1 else f"[{glo:g}, {ghi:g}]")
            odd = games[(games.players < glo) | (games.players > ghi)]
            found += [{"game_id": r.game_id, "game_date": r.game_date,
                       "detail": f"{r.game_id} on {r.game_date}: {int(r.players)} players, outside the {int(season)} range "
                                 f"[{glo:g}, {ghi:g}] calibrated on {len(basis)} games"}
                      for r in odd.itertuples(index=False)]
        add("players per game", name, "warn", found,
            example_if_none=("calibrated ranges " + "; ".join(ranges)) if ranges else None)

    # 3. impossible box-score values
    bad_rows = wh.query_file("validate/impossible_boxscores", rng)
    for name in BOX_TABLES:
        if not selected(name):
            continue
        sub = bad_rows[bad_rows.table_name == name]
        add("impossible values", name, "block",
            [{"game_id": r.game_id, "game_date": _as_date(r.game_date),
              "detail": f"{r.player_lookup} in {r.game_id}: {r.problem}"} for r in sub.itertuples(index=False)])

    # 4. reconciliation: the players' points add up to the final score, per game and team
    pts = wh.query_file("validate/team_points", rng)
    for name in PLAYER_TABLES:
        if not selected(name):
            continue
        sub = pts[pts.table_name == name]
        add("team points vs final score", name, "block",
            [{"game_id": r.game_id, "game_date": _as_date(r.game_date), "season_year": int(r.season_year),
              "detail": f"{r.game_id} on {_as_date(r.game_date)}: {r.team_abbr} players scored {int(r.player_points)}, "
                        f"the final score says {int(r.final_points)}"}
             for r in sub.itertuples(index=False)])

    # 5. reconciliation across phases: phase 3 has one row per phase 2 appearance, two per game per team table
    if selected("player_game_summary"):
        rows = wh.query_file("validate/phase_rows", rng)
        rows["game_date"] = pd.to_datetime(rows.game_date).dt.date
        # a table with no row for the game is a hole (validate counts it missing), not a contradiction:
        # only rows that exist and disagree are findings
        odd = rows[((rows.rows_summary > 0) & (rows.rows_phase2 != rows.rows_summary))
                   | ~rows.offense_rows.isin([0, 2]) | ~rows.defense_rows.isin([0, 2])]
        add("phase 2 vs phase 3 rows", "player_game_summary", "block",
            [{"game_id": r.game_id, "game_date": r.game_date,
              "detail": f"{r.game_id} on {r.game_date}: {int(r.rows_phase2)} players appear in phase 2, "
                        f"player_game_summary has {int(r.rows_summary)}; team offense/defense rows "
                        f"{int(r.offense_rows)}/{int(r.defense_rows)} (2 each)"}
             for r in odd.itertuples(index=False)],
            example_if_none=_season_totals(rows, season_of))
    out = pd.DataFrame(findings, columns=FINDING_COLUMNS)
    return pd.DataFrame(checks, columns=CHECK_COLUMNS), out


def plausible_range(values: pd.Series) -> tuple[float, float]:
    """[median - k, median + k] with k = ROBUST_Z * 1.4826 * MAD (MAD at least 1 player)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return (-np.inf, np.inf)
    med = float(np.median(v))
    mad = max(float(np.median(np.abs(v - med))), 1.0)
    k = ROBUST_Z * 1.4826 * mad
    return (float(np.floor(med - k)), float(np.ceil(med + k)))


def _season_totals(rows: pd.DataFrame, season_of: dict) -> str | None:
    """Per season: games and player-game rows in phase 2 and phase 3 (they agree)."""
    if rows.empty:
        return None
    r = rows.assign(season=rows.game_id.map(season_of))
    parts = []
    for s, g in r.groupby("season"):
        parts.append(f"{int(s)}: {len(g)} games, {int(g.rows_phase2.sum())} player-game rows in phase 2 and "
                     f"{int(g.rows_summary.sum())} in phase 3")
    return "; ".join(parts)
