"""Players, their true scoring ability, and who is on which team on a given day.

Every player has hidden "true" rates (points per minute, minutes role, shot mix) that
the prediction systems can learn; abilities drift between seasons, some players change
teams in the off-season and about fifteen are traded mid-season, so traded players
appear for two teams in one season.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from .calendar import SeasonCalendar
from .teams import FIRST_NAMES, LAST_NAMES, SUFFIXES, TEAMS

ROSTER_SIZE = 15
# expected minutes by depth-chart slot (starters first)
SLOT_MINUTES = np.array([35, 33, 32, 30, 29, 24, 21, 19, 16, 13, 9, 7, 5, 4, 3], dtype=float)


def player_lookup(name: str) -> str:
    """The platform's join key: lower-case ASCII letters of the name ("Luka Dončić" -> "lukadoncic")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_name.lower() if ch.isalnum())


@dataclass
class Roster:
    """Player attributes (one row per player) and team stints per season."""

    players: pd.DataFrame  # player_id, player_name, player_lookup + true rates
    stints: pd.DataFrame  # season_year, player_id, team_abbr, slot, start, end


def _new_players(rng: np.random.Generator, n: int, used: set[str], next_id: int) -> pd.DataFrame:
    rows = []
    while len(rows) < n:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}{rng.choice(SUFFIXES)}"
        lookup = player_lookup(name)
        if lookup in used:
            continue
        used.add(lookup)
        rows.append(
            {
                "player_id": next_id + len(rows),
                "player_name": name,
                "player_lookup": lookup,
                # points per minute: role players ~0.35, stars ~0.85
                "ppm": float(np.clip(rng.lognormal(np.log(0.45), 0.28), 0.18, 0.95)),
                "three_share": float(np.clip(rng.beta(3, 5), 0.02, 0.75)),
                "ft_share": float(np.clip(rng.normal(0.17, 0.05), 0.04, 0.35)),
                "fg2_pct": float(np.clip(rng.normal(0.53, 0.04), 0.40, 0.68)),
                "fg3_pct": float(np.clip(rng.normal(0.355, 0.035), 0.25, 0.45)),
                "ft_pct": float(np.clip(rng.normal(0.78, 0.07), 0.50, 0.93)),
                "reb_rate": float(np.clip(rng.lognormal(np.log(0.17), 0.35), 0.05, 0.45)),
                "ast_rate": float(np.clip(rng.lognormal(np.log(0.10), 0.45), 0.02, 0.35)),
            }
        )
    return pd.DataFrame(rows)


def build_rosters(rng: np.random.Generator, calendars: list[SeasonCalendar]) -> Roster:
    used: set[str] = set()
    players = _new_players(rng, len(TEAMS) * ROSTER_SIZE, used, 1_630_001)
    # initial rosters: sort by ability so each team gets stars and bench players
    order = players.sort_values("ppm", ascending=False).player_id.to_numpy()
    team_of: dict[int, str] = {}
    slot_of: dict[int, int] = {}
    for k, pid in enumerate(order):
        tier, pos = divmod(k, len(TEAMS))
        team = TEAMS[(pos if tier % 2 == 0 else len(TEAMS) - 1 - pos)]
        team_of[int(pid)] = team
    stints = []
    attrs = players.set_index("player_id")
    for cal in calendars:
        if cal is not calendars[0]:
            # off-season: abilities drift, 8 % retire (replaced by rookies), 12 % change teams
            attrs["ppm"] = np.clip(attrs["ppm"] * rng.normal(1.0, 0.08, len(attrs)), 0.18, 1.05)
            active = [p for p in team_of]
            retire = rng.choice(active, size=int(0.08 * len(active)), replace=False)
            rookies = _new_players(rng, len(retire), used, int(attrs.index.max()) + 1).set_index("player_id")
            attrs = pd.concat([attrs, rookies])
            for old, new in zip(retire, rookies.index):
                team_of[int(new)] = team_of.pop(int(old))
            movers = rng.choice(list(team_of), size=int(0.12 * len(team_of)), replace=False)
            teams_of_movers = [team_of[int(p)] for p in movers]
            for p, t in zip(movers, np.roll(teams_of_movers, 1)):
                team_of[int(p)] = t
        # depth chart by ability within each team
        for team in TEAMS:
            members = [p for p, t in team_of.items() if t == team]
            members.sort(key=lambda p: -attrs.at[p, "ppm"] * (1 + 0.3 * rng.random()))
            for slot, p in enumerate(members):
                slot_of[p] = slot
        season_end = date(cal.season_year + 1, 6, 30)
        start = cal.opener - timedelta(days=20)
        trades = _mid_season_trades(rng, cal, team_of, slot_of)
        for p, team in team_of.items():
            if p in trades:
                trade_day, new_team, new_slot = trades[p]
                stints.append((cal.season_year, p, team, slot_of[p], start, trade_day - timedelta(days=1)))
                stints.append((cal.season_year, p, new_team, new_slot, trade_day, season_end))
            else:
                stints.append((cal.season_year, p, team, slot_of[p], start, season_end))
        for p, (_, new_team, new_slot) in trades.items():
            team_of[p], slot_of[p] = new_team, new_slot
    stint_df = pd.DataFrame(stints, columns=["season_year", "player_id", "team_abbr", "slot", "start", "end"])
    return Roster(players=attrs.reset_index(), stints=stint_df)


def _mid_season_trades(rng, cal: SeasonCalendar, team_of: dict, slot_of: dict) -> dict[int, tuple]:
    """About 15 one-for-one trades between the 20th day and the February deadline."""
    trades: dict[int, tuple] = {}
    deadline = date(cal.season_year + 1, 2, 8)
    window = (deadline - cal.opener).days - 20
    for _ in range(15):
        a, b = rng.choice(TEAMS, size=2, replace=False)
        slot = int(rng.integers(3, 12))
        pa = next((p for p, t in team_of.items() if t == a and slot_of[p] == slot and p not in trades), None)
        pb = next((p for p, t in team_of.items() if t == b and slot_of[p] == slot and p not in trades), None)
        if pa is None or pb is None:
            continue
        day = cal.opener + timedelta(days=20 + int(rng.integers(0, window)))
        trades[pa] = (day, b, slot)
        trades[pb] = (day, a, slot)
    return trades
