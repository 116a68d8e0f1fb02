"""Real box-score quirks the demo league gets on top of the simulation, so tests meet them.

Real leagues are messier than a simulation: each quirk below broke a first run on real seasons.

* **short-handed games**: late in a regular season a team rests everyone it can; in these
  games both teams have only seven players who appear (14 in the game), far below the usual
  20-24. A plausibility check must warn, not block.
* **0:00 appearances with points**: box scores round minutes to whole minutes, so a player who
  is on the floor for a few seconds shows ``0:00`` in both sources and can still score (1-3
  points here). He played: he must reach ``player_game_summary`` and his team's points.
* **an optional source with no lines**: no book posted player points lines on the first two
  game dates of 2024-25 (the prop file exists, with no events), and the odds scraper never ran
  for the 2023-24 play-in (no files at all). ``params/waivers.example.yaml`` waives both.

A separate random stream (``seed + 101``) is used, so the simulation itself is unchanged.
Scores in the schedule follow every change, so team points always add up to the final score.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from ..sources import PROPS

# the waivers in params/waivers.example.yaml name these
NO_LINES_SEASON, NO_LINES_DATES = 2024, 2  # the first two game dates of 2024-25: no lines posted
NO_FILES = (PROPS, 2023, "play_in")  # (source, season, game type) the scraper never ran for
SHORT_HANDED_PLAYERS = 7  # per team
REST_WEEKS_DAYS = 14  # short-handed games come from a season's last two regular-season weeks


@dataclass
class Quirks:
    short_handed: list[str] = field(default_factory=list)  # game ids
    cameos: list[dict] = field(default_factory=list)  # game_id, player_lookup, team_abbr, points
    no_lines: dict[str, list[date]] = field(default_factory=dict)  # source -> dates with an empty file
    no_files: dict[str, list[date]] = field(default_factory=dict)  # source -> dates without a file

    def to_json(self) -> dict:
        d = asdict(self)
        d["no_lines"] = {k: [x.isoformat() for x in v] for k, v in self.no_lines.items()}
        d["no_files"] = {k: [x.isoformat() for x in v] for k, v in self.no_files.items()}
        return d


def _secs(m: str) -> int:
    mm, ss = str(m).split(":")
    return int(mm) * 60 + int(ss)


def _clock(s: int) -> str:
    return f"{s // 60}:{s % 60:02d}"


def add_quirks(league, seed: int) -> Quirks:
    """Apply every quirk to the league's frames in place; return what was changed."""
    rng = np.random.default_rng(seed + 101)
    q = Quirks()
    sched = league.schedule
    final = sched[sched.game_status == "final"]
    for season in sorted(final.season_year.unique()):
        regular = final[(final.season_year == season) & (final.game_type == "regular")]
        if regular.empty:
            continue
        last = regular.game_date.max()
        late = regular[regular.game_date.map(lambda d: (last - d).days <= REST_WEEKS_DAYS)]
        if len(late) >= 10:
            for gid in rng.choice(sorted(late.game_id), size=2, replace=False):
                _short_handed(league, str(gid), rng)
                q.short_handed.append(str(gid))
        pool = sorted(set(regular.game_id) - set(q.short_handed))
        for gid in rng.choice(pool, size=min(4, len(pool)), replace=False):
            cameo = _cameo(league, str(gid), rng)
            if cameo:
                q.cameos.append(cameo)
    # an optional source with gaps: no lines on some dates, no files for a whole game type
    season_dates = sorted(set(final[final.season_year == NO_LINES_SEASON].game_date))
    dry = season_dates[:NO_LINES_DATES]
    if dry:
        league.props = league.props[~league.props.game_date.isin(dry)].reset_index(drop=True)
        q.no_lines[PROPS] = dry
    source, season, gtype = NO_FILES
    gone = sorted(set(final[(final.season_year == season) & (final.game_type == gtype)].game_date))
    if gone:
        league.props = league.props[~league.props.game_date.isin(gone)].reset_index(drop=True)
        q.no_files[source] = gone
    return q


def _add_points(league, gid: str, team: str, pts: int) -> None:
    s = league.schedule
    i = s.index[s.game_id == gid][0]
    col = "home_score" if s.at[i, "home_team"] == team else "away_score"
    s.at[i, col] = int(s.at[i, col]) + pts


def _short_handed(league, gid: str, rng) -> None:
    """Both teams play with their seven busiest players; the rest sit out (rest, not injury)."""
    gb, box = league.gamebook, league.boxscores
    for team in sorted(box[box.game_id == gid].team_abbr.unique()):
        box = league.boxscores
        rows = box[(box.game_id == gid) & (box.team_abbr == team)]
        secs = rows.minutes.map(_secs)
        keep = secs.sort_values(ascending=False).index[:SHORT_HANDED_PLAYERS]
        drop = rows.index.difference(keep)
        freed = int(secs[drop].sum())
        extra = np.full(len(keep), freed // len(keep))
        extra[0] += freed - extra.sum()
        for k, x in zip(keep, extra):
            box.at[k, "minutes"] = _clock(_secs(box.at[k, "minutes"]) + int(x))
        _add_points(league, gid, team, -int(box.loc[drop, "points"].sum()))
        gone = set(box.loc[drop, "player_lookup"])
        box = league.boxscores = box.drop(index=drop)
        m = (gb.game_id == gid) & (gb.team_abbr == team)
        sit = m & gb.player_lookup.isin(gone)
        gb.loc[sit, "player_status"] = "inactive"
        gb.loc[sit, "dnp_reason"] = "Inactive - Rest"
        gb.loc[sit, "minutes"] = np.nan
        gb.loc[sit, "starter"] = False
        for c in ("points", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "reb", "ast", "stl", "blk", "tov", "pf"):
            gb.loc[sit, c] = 0
        by_player = dict(zip(box[(box.game_id == gid) & (box.team_abbr == team)].player_lookup,
                             box[(box.game_id == gid) & (box.team_abbr == team)].minutes.map(_secs)))
        act = m & gb.player_lookup.isin(by_player)
        gb.loc[act, "minutes"] = gb.loc[act, "player_lookup"].map(lambda p: round(by_player[p] / 60, 2))
    _no_tie(league, gid)
    league.boxscores = league.boxscores.reset_index(drop=True)


def _no_tie(league, gid: str) -> None:
    """A tied final after players sat out: the home team's busiest player made one more free throw."""
    s = league.schedule
    g = s[s.game_id == gid].iloc[0]
    if int(g.home_score) != int(g.away_score):
        return
    box, gb = league.boxscores, league.gamebook
    rows = box[(box.game_id == gid) & (box.team_abbr == g.home_team)]
    k = rows.minutes.map(_secs).idxmax()
    lookup = box.at[k, "player_lookup"]
    for frame, idx in ((box, [k]), (gb, gb.index[(gb.game_id == gid) & (gb.player_lookup == lookup)])):
        for c in ("points", "ftm", "fta"):
            frame.loc[idx, c] = frame.loc[idx, c] + 1
    _add_points(league, gid, g.home_team, 1)


def _cameo(league, gid: str, rng) -> dict | None:
    """A player the gamebook had as DNP checks in for a few seconds and scores: 0:00 everywhere."""
    s = league.schedule
    g = s[s.game_id == gid].iloc[0]
    winner = g.home_team if int(g.home_score) > int(g.away_score) else g.away_team  # points never flip a result
    gb, box = league.gamebook, league.boxscores
    bench = gb[(gb.game_id == gid) & (gb.team_abbr == winner) & (gb.player_status == "dnp")]
    if bench.empty:
        return None
    i = bench.index[0]
    pts = int(rng.choice([1, 2, 3]))
    stats = {"points": pts, "fgm": 0, "fga": 0, "fg3m": 0, "fg3a": 0, "ftm": 0, "fta": 0, "reb": 0, "ast": 0,
             "stl": 0, "blk": 0, "tov": 0, "pf": 0}
    if pts == 1:
        stats.update(ftm=1, fta=2)
    else:
        stats.update(fgm=1, fga=1, fg3m=pts - 2, fg3a=pts - 2)
    gb.loc[i, list(stats)] = list(stats.values())
    gb.loc[i, ["player_status", "minutes"]] = ["active", 0.0]
    gb.loc[i, "dnp_reason"] = None
    team_rows = box[(box.game_id == gid) & (box.team_abbr == winner)]
    row = team_rows.iloc[0].copy()
    for c in ("player_id", "player_name", "player_lookup"):
        row[c] = gb.at[i, c]
    for c, v in stats.items():
        if c in row.index:
            row[c] = v
    if "oreb" in row.index:
        row["oreb"] = 0
    if "dreb" in row.index:
        row["dreb"] = 0
    row["minutes"] = "0:00"
    league.boxscores = pd.concat([box, row.to_frame().T.astype(box.dtypes.to_dict())], ignore_index=True) \
        .sort_values(["game_date", "game_id", "team_abbr"], kind="stable").reset_index(drop=True)
    _add_points(league, gid, winner, pts)
    return {"game_id": gid, "player_lookup": str(gb.at[i, "player_lookup"]), "team_abbr": winner, "points": pts}
