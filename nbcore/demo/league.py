"""Generate a season-by-season league: schedule, box scores, gamebooks and prop lines.

Numbers hang together the way real box scores do: points = 2*FGM + 3PM + FTM, FGM <= FGA,
team minutes add up to 240 (+25 per overtime), DNP and inactive players appear only in the
gamebook. Scoring follows hidden true effects (player rate, opponent defense, pace, home
court, back-to-backs) so that better prediction systems can beat a moving average.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from .calendar import CALENDARS, SeasonCalendar, regular_season_games
from .players import SLOT_MINUTES, Roster, build_rosters
from .teams import CONFERENCE, EAST, TEAMS, WEST

DEMO_TODAY = date(2026, 1, 1)  # the 2025-26 season is in progress up to here
FULL_SEASONS = [2021, 2022, 2023, 2024, 2025]
# small scale: the end of 2023-24 (regular season, play-in, early playoffs) and the start of 2024-25
SMALL_WINDOWS = {2023: (date(2024, 3, 25), date(2024, 5, 5)), 2024: (date(2024, 10, 22), date(2024, 11, 12))}
BOOKMAKERS = ("draftkings", "fanduel")
GAME_TYPE_CODE = {"regular": "2", "playoffs": "4", "play_in": "5", "cup_final": "6"}


@dataclass
class League:
    """Everything the generator made; frames mirror the phase 2 tables (before loading)."""

    seed: int
    scale: str
    schedule: pd.DataFrame
    boxscores: pd.DataFrame
    gamebook: pd.DataFrame
    props: pd.DataFrame
    players: pd.DataFrame
    team_ratings: pd.DataFrame
    windows: dict[int, tuple[date, date]] = field(default_factory=dict)
    quirks: object = None  # nbcore.demo.quirks.Quirks: short-handed games, 0:00 scorers, source gaps

    @property
    def game_dates(self) -> list[date]:
        final = self.schedule[self.schedule.game_status == "final"]
        return sorted(set(final.game_date))


class _Sim:
    """Simulates games one at a time, in date order (rest days need the previous game)."""

    def __init__(self, rng: np.random.Generator, roster: Roster, ratings: pd.DataFrame):
        self.rng = rng
        attr = roster.players.reset_index(drop=True)
        self.row_of = {int(p): i for i, p in enumerate(attr.player_id)}
        cols = ["ppm", "three_share", "ft_share", "fg2_pct", "fg3_pct", "ft_pct", "reb_rate", "ast_rate"]
        self.attr_arr = {c: attr[c].to_numpy() for c in cols}
        self.ratings = {k: tuple(v) for k, v in ratings[["offense", "defense", "pace"]].iterrows()}
        self.last_played: dict[tuple[int, str], date] = {}
        self.box_rows: list[tuple] = []
        self.prop_rows: list[tuple] = []
        self._rosters: dict[tuple[int, str], tuple] = {}
        for (season, team), s in roster.stints.sort_values("slot").groupby(["season_year", "team_abbr"]):
            rows = np.array([self.row_of[int(p)] for p in s.player_id])
            self._rosters[(season, team)] = (
                s.player_id.to_numpy(), s.slot.to_numpy(), rows,
                np.array([d.toordinal() for d in s.start]), np.array([d.toordinal() for d in s.end]),
            )

    def roster(self, season: int, team: str, day: date):
        pids, slots, rows, start, end = self._rosters[(season, team)]
        o = day.toordinal()
        m = (start <= o) & (end >= o)
        return pids[m], slots[m], rows[m]

    def play(self, game: dict) -> tuple[int, int, int]:
        rng = self.rng
        season, day = game["season_year"], game["game_date"]
        periods = 4 + int(rng.choice([0, 1, 2], p=[0.94, 0.05, 0.01]))
        pace = float(rng.normal(1.0, 0.03)) * (
            self.ratings[(season, game["home_team"])][2] + self.ratings[(season, game["away_team"])][2]
        ) / 2
        scores = {}
        team_rows = {}
        for team, opp, is_home in ((game["home_team"], game["away_team"], True), (game["away_team"], game["home_team"], False)):
            team_rows[team] = self._team_box(game, team, opp, is_home, periods, pace)
            scores[team] = sum(r[7] for r in team_rows[team])
        home, away = game["home_team"], game["away_team"]
        if scores[home] == scores[away]:  # no ties: a late free throw decides it
            top = max(team_rows[home], key=lambda r: r[6])  # most minutes
            top[7] += 1  # points
            top[12] += 1  # ftm
            top[13] += 1  # fta
            scores[home] += 1
        for team in (home, away):
            for r in team_rows[team]:
                self.box_rows.append(tuple(r))
            self.last_played[(season, team)] = day
        return scores[home], scores[away], periods

    def _team_box(self, game, team, opp, is_home, periods, pace) -> list[dict]:
        rng = self.rng
        season, day = game["season_year"], game["game_date"]
        pids, slots, attr_rows = self.roster(season, team, day)
        n = len(pids)
        inactive = rng.random(n) < 0.07
        if (~inactive).sum() < 9:
            inactive[:] = False
        available = np.flatnonzero(~inactive)
        k = int(rng.integers(10, 13))
        rotation = available[:k]
        playing = np.zeros(n, dtype=bool)
        playing[rotation] = True
        total_s = (240 + 25 * (periods - 4)) * 60
        w = SLOT_MINUTES[np.minimum(slots[rotation], 14)] * rng.lognormal(0, 0.18, len(rotation))
        secs = np.floor(w / w.sum() * total_s).astype(int)
        secs[np.argmax(secs)] += total_s - secs.sum()
        minutes_s = np.zeros(n, dtype=int)
        minutes_s[rotation] = secs

        off_team = self.ratings[(season, team)][0]
        def_opp = self.ratings[(season, opp)][1]
        last = self.last_played.get((season, team))
        b2b = last is not None and (day - last).days == 1
        factor = off_team * def_opp * pace * (1.015 if is_home else 0.985) * (0.95 if b2b else 1.0)
        a = {c: v[attr_rows] for c, v in self.attr_arr.items()}
        mins = minutes_s / 60.0
        exp_pts = a["ppm"] * mins * factor * rng.normal(1.0, 0.2, n).clip(0.45, 1.6)
        fta = rng.poisson(exp_pts * a["ft_share"] / a["ft_pct"])
        ftm = rng.binomial(fta, a["ft_pct"])
        field_pts = exp_pts * (1 - a["ft_share"])
        fg3a = rng.poisson(field_pts * a["three_share"] / (3 * a["fg3_pct"]))
        fg2a = rng.poisson(field_pts * (1 - a["three_share"]) / (2 * a["fg2_pct"]))
        fg3m = rng.binomial(fg3a, a["fg3_pct"])
        fg2m = rng.binomial(fg2a, a["fg2_pct"])
        reb = rng.poisson(a["reb_rate"] * mins)
        oreb = rng.binomial(reb, 0.22)
        ast = rng.poisson(a["ast_rate"] * mins)
        stl = rng.poisson(0.03 * mins)
        blk = rng.poisson(0.02 * mins)
        tov = rng.poisson(0.045 * mins)
        pf = np.minimum(6, rng.poisson(0.07 * mins))

        line_expect = a["ppm"] * SLOT_MINUTES[np.minimum(slots, 14)] * off_team * def_opp
        z = playing & (minutes_s > 0)
        fgm = np.where(z, fg2m + fg3m, 0)
        pts = np.where(z, 2 * fgm + fg3m + ftm, 0)
        starters = np.zeros(n, dtype=bool)
        starters[rotation[:5]] = True
        stats = [np.where(z, x, 0) for x in (minutes_s, pts, fgm, fg2a + fg3a, fg3m, fg3a, ftm, fta, oreb, reb, ast, stl, blk, tov, pf)]
        status = np.where(z, "active", np.where(inactive, "inactive", "dnp"))
        rows = [
            [game["game_id"], int(pids[i]), team, opp, status[i], bool(z[i] and starters[i])] + [int(x[i]) for x in stats]
            for i in range(n)
        ]
        # books post lines for rotation players; a few late scratches keep theirs
        posted = (slots <= 8) & (~inactive | (rng.random(n) < 0.3))
        for i in np.flatnonzero(posted):
            base = line_expect[i] * rng.normal(1.0, 0.06)
            dk = max(2.5, np.floor(base * 2) / 2)
            if rng.random() < 0.7 and dk == int(dk):
                dk += 0.5
            fd = dk + float(rng.choice([-0.5, 0.0, 0.0, 0.5]))
            for book, line in zip(BOOKMAKERS, (dk, fd)):
                over = int(-110 + rng.integers(-8, 9))
                self.prop_rows.append((game["game_id"], int(pids[i]), team, book, float(line), over, int(-220 - over)))
        return rows


def _team_ratings(rng: np.random.Generator, seasons: list[int]) -> pd.DataFrame:
    rows = []
    off = rng.normal(1.0, 0.035, len(TEAMS))
    dfn = rng.normal(1.0, 0.05, len(TEAMS))
    pace = rng.normal(1.0, 0.03, len(TEAMS))
    for s in seasons:
        off = 0.6 * off + 0.4 * rng.normal(1.0, 0.035, len(TEAMS))
        dfn = 0.6 * dfn + 0.4 * rng.normal(1.0, 0.05, len(TEAMS))
        pace = 0.7 * pace + 0.3 * rng.normal(1.0, 0.03, len(TEAMS))
        for t, o, d, p in zip(TEAMS, off, dfn, pace):
            rows.append((s, t, float(o), float(d), float(p)))
    return pd.DataFrame(rows, columns=["season_year", "team_abbr", "offense", "defense", "pace"]).set_index(
        ["season_year", "team_abbr"]
    )


def _game_id(season: int, game_type: str, seq: int) -> str:
    return f"00{GAME_TYPE_CODE[game_type]}{season % 100:02d}{seq:05d}"


def _postpone(rng, games: list[tuple[date, str, str]], n: int) -> list[tuple[date, str, str, date | None]]:
    """Move ``n`` games to a later date when both teams are free; keep the original date."""
    out = [(d, h, a, None) for d, h, a in games]
    dates = sorted({d for d, *_ in games})
    busy: dict[date, set[str]] = {}
    for d, h, a in games:
        busy.setdefault(d, set()).update((h, a))
    for i in rng.choice(np.arange(50, len(out) - 300), size=n, replace=False):
        d, h, a, _ = out[i]
        for later in dates:
            if (later - d).days >= 20 and h not in busy[later] and a not in busy[later]:
                busy[d] -= {h, a}
                busy[later].update((h, a))
                out[i] = (later, h, a, d)
                break
    return sorted(out, key=lambda g: g[0])


def _seeds(rng, ratings: pd.DataFrame, season: int) -> dict[str, list[str]]:
    strength = {t: ratings.at[(season, t), "offense"] / ratings.at[(season, t), "defense"] + rng.normal(0, 0.02) for t in TEAMS}
    return {conf: sorted(teams, key=lambda t: -strength[t])[:10] for conf, teams in (("East", EAST), ("West", WEST))}


def _simulate_postseason(sim: _Sim, cal: SeasonCalendar, seeds: dict[str, list[str]], schedule: list[dict], until: date):
    """Play-in (6 games, 3 dates) then four best-of-seven rounds, game by game."""

    def play(day, home, away, gtype, rnd=None, gnum=None):
        if day > until:
            return None
        seq = sum(1 for g in schedule if g["game_type"] == gtype) + 1
        g = {
            "game_id": _game_id(cal.season_year, gtype, seq),
            "game_date": day,
            "season_year": cal.season_year,
            "game_type": gtype,
            "home_team": home,
            "away_team": away,
            "original_game_date": None,
            "playoff_round": rnd,
            "series_game_number": gnum,
        }
        hs, as_, periods = sim.play(g)
        g.update(game_status="final", home_score=hs, away_score=as_, periods=periods)
        schedule.append(g)
        return home if hs > as_ else away

    d0 = cal.play_in_start
    bracket = {}
    for k, conf in enumerate(("East", "West")):
        s = seeds[conf]
        w78 = play(d0, s[6], s[7], "play_in")
        w910 = play(d0 + timedelta(days=1), s[8], s[9], "play_in")
        if w78 is None or w910 is None:
            return
        loser78 = s[7] if w78 == s[6] else s[6]
        w8 = play(d0 + timedelta(days=3), loser78, w910, "play_in")
        if w8 is None:
            return
        bracket[conf] = s[:6] + [w78, w8]

    # first round pairs 1-8, 4-5, 3-6, 2-7 so the bracket meets as on the real one
    series = [(bracket[c][i], bracket[c][j]) for c in ("East", "West") for i, j in ((0, 7), (3, 4), (2, 5), (1, 6))]
    start = cal.playoffs_start
    for rnd in (1, 2, 3, 4):
        offsets = [0, 3, 5, 8, 10, 13, 16] if rnd == 4 else [0, 2, 4, 6, 8, 10, 12]
        winners, last_day = [], start
        for j, (high, low) in enumerate(series):
            stagger = 0 if rnd == 4 else (j % 2)
            wins = {high: 0, low: 0}
            for gnum in range(7):
                day = start + timedelta(days=stagger + offsets[gnum])
                home, away = (high, low) if gnum in (0, 1, 4, 6) else (low, high)
                w = play(day, home, away, "playoffs", rnd, gnum + 1)
                if w is None:
                    return
                wins[w] += 1
                last_day = max(last_day, day)
                if wins[w] == 4:
                    winners.append(w)
                    break
        if rnd == 4:
            return
        series = [(winners[i], winners[i + 1]) for i in range(0, len(winners), 2)]
        start = last_day + timedelta(days=2 if rnd < 3 else 4)


def generate_league(seed: int = 7, scale: str = "full") -> League:
    """A deterministic league: the same seed and scale always give the same frames."""
    if scale not in ("full", "small"):
        raise ValueError(f"scale must be 'full' or 'small', not {scale!r}")
    rng = np.random.default_rng(seed)
    seasons = FULL_SEASONS if scale == "full" else sorted(SMALL_WINDOWS)
    cals = [CALENDARS[s] for s in seasons]
    roster = build_rosters(rng, cals)
    ratings = _team_ratings(rng, seasons)
    sim = _Sim(rng, roster, ratings)
    schedule: list[dict] = []
    windows: dict[int, tuple[date, date]] = {}
    for cal in cals:
        lo, hi = SMALL_WINDOWS.get(cal.season_year) if scale == "small" else (cal.opener, date(cal.season_year + 1, 6, 30))
        hi = min(hi, DEMO_TODAY - timedelta(days=1))
        windows[cal.season_year] = (lo, hi)
        games = _postpone(rng, regular_season_games(cal, rng), 3)
        if cal.cup_final:
            east, west = rng.choice(EAST), rng.choice(WEST)
            games.append((cal.cup_final, east, west, None))
            games.sort(key=lambda g: g[0])
        seq = 0
        for day, home, away, original in games:
            gtype = "cup_final" if day == cal.cup_final else "regular"
            if gtype == "regular":
                seq += 1
            g = {
                "game_id": _game_id(cal.season_year, gtype, seq if gtype == "regular" else 1),
                "game_date": day,
                "season_year": cal.season_year,
                "game_type": gtype,
                "home_team": home,
                "away_team": away,
                "original_game_date": original,
                "playoff_round": None,
                "series_game_number": None,
            }
            if lo <= day <= hi:
                hs, as_, periods = sim.play(g)
                g.update(game_status="final", home_score=hs, away_score=as_, periods=periods)
            elif day >= DEMO_TODAY:
                g.update(game_status="scheduled", home_score=None, away_score=None, periods=None)
            else:
                continue  # outside the small-scale window: not part of this league
            schedule.append(g)
        if cal.regular_end < DEMO_TODAY:
            # resimulate until the playoffs are the size real ones are (80-90 games)
            base_state = (len(schedule), len(sim.box_rows), len(sim.prop_rows), dict(sim.last_played))
            for attempt in range(50):
                _simulate_postseason(sim, cal, _seeds(rng, ratings, cal.season_year), schedule, hi)
                n_po = sum(1 for g in schedule[base_state[0]:] if g["game_type"] == "playoffs")
                if scale == "small" or 80 <= n_po <= 90:
                    break
                del schedule[base_state[0]:]
                del sim.box_rows[base_state[1]:]
                del sim.prop_rows[base_state[2]:]
                sim.last_played = dict(base_state[3])
    league = _frames(seed, scale, schedule, sim, roster, ratings, windows)
    from .quirks import add_quirks

    league.quirks = add_quirks(league, seed)
    return league


def _frames(seed, scale, schedule, sim: _Sim, roster: Roster, ratings, windows) -> League:
    sched = pd.DataFrame(schedule)
    sched = sched[
        ["game_id", "game_date", "season_year", "game_type", "game_status", "home_team", "away_team",
         "home_score", "away_score", "periods", "original_game_date", "playoff_round", "series_game_number"]
    ].sort_values(["game_date", "game_id"]).reset_index(drop=True)
    for c in ("home_score", "away_score", "periods", "playoff_round", "series_game_number"):
        sched[c] = sched[c].astype("Int64")
    box_cols = ["game_id", "player_id", "team_abbr", "opponent_team_abbr", "status", "starter", "minutes_s", "points",
                "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "reb", "ast", "stl", "blk", "tov", "pf"]
    gb = pd.DataFrame(sim.box_rows, columns=box_cols)
    info = sched.set_index("game_id")[["game_date", "season_year"]]
    gb = gb.join(info, on="game_id")
    names = roster.players.set_index("player_id")[["player_name", "player_lookup"]]
    gb = gb.join(names, on="player_id")
    gb["dreb"] = gb["reb"] - gb["oreb"]
    gb["player_status"] = gb["status"]
    gb["dnp_reason"] = gb["status"].map({"dnp": "DNP - Coach's Decision", "inactive": "Inactive - Injury/Illness"})
    gb["minutes"] = np.where(gb.status == "active", (gb.minutes_s / 60).round(2), np.nan)
    box = gb[gb.status == "active"].copy()
    box["minutes"] = box.minutes_s.map(lambda s: f"{s // 60}:{s % 60:02d}")
    props = pd.DataFrame(sim.prop_rows, columns=["game_id", "player_id", "team_abbr", "bookmaker", "points_line", "over_price", "under_price"])
    props = props.join(info, on="game_id").join(names, on="player_id")
    return League(
        seed=seed,
        scale=scale,
        schedule=sched,
        boxscores=box.drop(columns=["status", "starter", "minutes_s", "player_status", "dnp_reason"]).reset_index(drop=True),
        gamebook=gb.drop(columns=["status", "minutes_s", "opponent_team_abbr", "oreb", "dreb"]).reset_index(drop=True),
        props=props.reset_index(drop=True),
        players=roster.players,
        team_ratings=ratings.reset_index(),
        windows=windows,
    )
