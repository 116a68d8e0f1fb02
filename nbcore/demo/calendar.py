"""Season calendars and the regular-season schedule.

Each team plays 82 games (1,230 in all) on about 160-165 dates between opening night and
mid-April, never twice a day, with the league's usual dark days (Thanksgiving, Christmas
Eve, the All-Star break, the NBA Cup final's night). Dates and the post-season windows
follow the real seasons; the known windows in DESIGN.md are matched where given.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from .teams import TEAMS


@dataclass(frozen=True)
class SeasonCalendar:
    season_year: int
    opener: date
    regular_end: date
    play_in_start: date
    playoffs_start: date
    cup_final: date | None

    @property
    def label(self) -> str:
        return f"{self.season_year}-{(self.season_year + 1) % 100:02d}"


CALENDARS = {
    2021: SeasonCalendar(2021, date(2021, 10, 19), date(2022, 4, 10), date(2022, 4, 12), date(2022, 4, 16), None),
    2022: SeasonCalendar(2022, date(2022, 10, 18), date(2023, 4, 9), date(2023, 4, 11), date(2023, 4, 15), None),
    2023: SeasonCalendar(2023, date(2023, 10, 24), date(2024, 4, 14), date(2024, 4, 16), date(2024, 4, 20), date(2023, 12, 9)),
    2024: SeasonCalendar(2024, date(2024, 10, 22), date(2025, 4, 13), date(2025, 4, 15), date(2025, 4, 19), date(2024, 12, 17)),
    2025: SeasonCalendar(2025, date(2025, 10, 21), date(2026, 4, 12), date(2026, 4, 14), date(2026, 4, 18), date(2025, 12, 16)),
}


def _dark_days(cal: SeasonCalendar) -> set[date]:
    y0, y1 = cal.season_year, cal.season_year + 1
    nov1 = date(y0, 11, 1)
    thanksgiving = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
    feb1 = date(y1, 2, 1)
    third_sunday = feb1 + timedelta(days=(6 - feb1.weekday()) % 7 + 14)
    all_star = {third_sunday + timedelta(days=k) for k in range(-3, 4)}
    days = {thanksgiving, date(y0, 12, 24)} | all_star
    if cal.cup_final:
        days.add(cal.cup_final)
    return days


def regular_season_dates(cal: SeasonCalendar) -> list[date]:
    dark = _dark_days(cal)
    out, d = [], cal.opener
    while d <= cal.regular_end:
        if d not in dark:
            out.append(d)
        d += timedelta(days=1)
    return out


def _round_robin(teams: list[int], rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """Circle-method rounds: every team once per round, every pair once per cycle."""
    order = list(rng.permutation(teams))
    n = len(order)
    rounds = []
    for r in range(n - 1):
        pairs = []
        for i in range(n // 2):
            a, b = order[i], order[n - 1 - i]
            pairs.append((a, b) if (r + i) % 2 == 0 else (b, a))
        rounds.append(pairs)
        order = [order[0]] + [order[-1]] + order[1:-1]
    return rounds


def regular_season_games(cal: SeasonCalendar, rng: np.random.Generator) -> list[tuple[date, str, str]]:
    """(date, home, away) for 1,230 games: two home-and-away cycles plus 24 more rounds."""
    n = len(TEAMS)
    idx = list(range(n))
    first = _round_robin(idx, rng)
    second = [[(b, a) for a, b in rnd] for rnd in first]
    third = _round_robin(idx, rng)[:24]
    rounds = first + second + third
    order = rng.permutation(len(rounds))
    rounds = [rounds[i] for i in order]

    dates = regular_season_dates(cal)
    # a few quiet nights, as on the real calendar (about 160-165 game dates)
    quiet = set(rng.choice(np.arange(5, len(dates) - 5), size=max(0, len(dates) - 166), replace=False).tolist())
    dates = [d for i, d in enumerate(dates) if i not in quiet]
    nd = len(dates)
    busy: list[set[int]] = [set() for _ in range(nd)]
    games: list[tuple[date, str, str]] = []
    per_round = nd / len(rounds)
    for r, rnd in enumerate(rounds):
        base = int(r * per_round)
        for home, away in (rnd[i] for i in rng.permutation(len(rnd))):
            di = base + int(rng.integers(0, 2))
            while True:
                di = min(di, nd - 1)
                if home not in busy[di] and away not in busy[di] and len(busy[di]) < 28:
                    break
                di += 1
                if di >= nd:  # wrap to the first free date from the start of the round window
                    di = next(j for j in range(nd) if home not in busy[j] and away not in busy[j])
                    break
            busy[di].update((home, away))
            games.append((dates[di], TEAMS[home], TEAMS[away]))
    games.sort()
    return games
