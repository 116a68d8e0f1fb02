"""Waivers: data known to be unavailable or known to be odd, reviewed and approved by a person.

A waiver file lives under ``params/`` and the run's ``waivers`` parameter points at it. Each
waiver names a source, *where* it applies (the level the problem was found at) and why::

    waivers:
      # dates: the source has nothing for these dates
      - source: odds_api_player_points_props
        dates: [2024-04-07]
        reason: The Odds API had an outage that day; no lines were ever captured.
        approved_by: jane.doe (data platform on-call)
      # a whole game type of a season, in one line (the dates come from the schedule)
      - {source: bdl_player_boxscores, season: 2023, game_type: play_in, reason: ..., approved_by: ...}
      # single games, and only one check (the data is there, and correct, but unusual)
      - source: bdl_player_boxscores
        games: ["0022300512"]
        check: players per game
        reason: Short-handed game; both teams had seven players available.
        approved_by: jane.doe

Without ``check`` a waiver means "not missing": load does not read the file, validate, the gate,
derive, predict, grade and the report treat the games as reviewed, not as holes. With ``check``
it only silences that check's finding for those games or dates (``WAIVABLE_CHECKS``).
"""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Iterable, Literal, Optional

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .params import ParamsError, RunParams, read_yaml_file
from .sources import DATED_SOURCES

GAME_TYPES = ("regular", "play_in", "playoffs", "cup_final")
# the checks validate and the gate run, by the name they report; "complete" is missing data
WAIVABLE_CHECKS = (
    "complete against the schedule",
    "players per game",
    "team points vs final score",
    "phase 2 vs phase 3 rows",
    "impossible values",
    "duplicate keys",
    "NULL key columns",
    "latest load succeeded",
)
# tables whose checks can be waived besides the raw sources (phase 3 is reconciled with phase 2)
CHECKED_TABLES = ("player_game_summary",)


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    dates: list[date] = Field(default_factory=list)
    games: list[str] = Field(default_factory=list, description="game ids, as in the schedule")
    season: Optional[int] = Field(default=None, description="season_year (2023 = 2023-24), with game_type")
    game_type: Optional[Literal["regular", "play_in", "playoffs", "cup_final"]] = None
    check: Optional[str] = Field(default=None, description="waive only this check (default: missing data and every check)")
    reason: str = Field(min_length=10, description="why the data cannot be had, in a sentence")
    approved_by: str = Field(min_length=2, description="who reviewed and approved the waiver")

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        if v not in DATED_SOURCES + CHECKED_TABLES:
            raise ValueError(f"unknown source {v!r}; waivable sources are {', '.join(DATED_SOURCES + CHECKED_TABLES)}")
        return v

    @field_validator("check")
    @classmethod
    def _known_check(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v not in WAIVABLE_CHECKS:
            raise ValueError(f"unknown check {v!r}; checks are: {', '.join(WAIVABLE_CHECKS)}")
        return v

    @field_validator("reason", "approved_by")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @model_validator(mode="after")
    def _one_scope(self) -> "Waiver":
        scopes = [bool(self.dates), bool(self.games), self.season is not None]
        if sum(scopes) != 1:
            raise ValueError("give exactly one of: dates, games, or season (with game_type for one game type of a season)")
        if self.game_type is not None and self.season is None:
            raise ValueError("game_type needs season (e.g. season: 2023, game_type: playoffs)")
        if self.source in CHECKED_TABLES and self.check is None:
            raise ValueError(f"{self.source} is a derived table: a waiver for it must name the check it waives")
        return self

    @property
    def needs_schedule(self) -> bool:
        return bool(self.games) or self.season is not None

    def where(self) -> str:
        """Where it applies, in words (for tables and the report)."""
        if self.dates:
            return ", ".join(d.isoformat() for d in self.dates)
        if self.games:
            return "games " + ", ".join(self.games)
        label = f"{self.season}-{(self.season + 1) % 100:02d}"
        return f"{self.game_type} games of {label}" if self.game_type else f"season {label}"

    def covers_game(self, game_id: str, game_date: date, season: int, game_type: str) -> bool:
        if self.dates:
            return game_date in self.dates
        if self.games:
            return game_id in self.games
        return season == self.season and (self.game_type is None or game_type == self.game_type)


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    waivers: list[Waiver] = Field(default_factory=list)


def load_waivers(params: RunParams) -> list[Waiver]:
    """The waivers the run's ``waivers`` parameter points at (none if unset)."""
    path = getattr(params, "waivers", None)
    if not path:
        return []
    return read_waiver_file(Path(path))


def read_waiver_file(path: Path) -> list[Waiver]:
    if not path.is_file():
        raise ParamsError(f"waivers: file {path} not found; point 'waivers' at a YAML file under params/ or remove it")
    data = read_yaml_file(path, "waivers: file")
    if data is None:
        raise ParamsError(f"waivers: {path} is empty, so it waives nothing; add waivers (see "
                          f"params/waivers.example.yaml), or remove the 'waivers' parameter")
    try:
        return WaiverFile.model_validate(data).waivers
    except ValidationError as e:
        lines = [f"invalid waiver file {path}:"]
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            lines.append(f"  - {loc or 'waiver'}: {err['msg'].removeprefix('Value error, ')}")
        lines.append("  each waiver needs source, one of dates / games / season (+ game_type), reason (a sentence) "
                     "and approved_by; check is optional")
        raise ParamsError("\n".join(lines)) from None


class WaiverIndex(dict):
    """(source, date) -> the waiver that makes the whole date "not missing", plus finer lookups.

    As a dict it holds only whole-date waivers without ``check`` (what load skips and what is
    "not missing"): a date waiver, or a game / game-type waiver that covers every completed game
    of that date. ``for_game`` and ``for_check`` answer the finer questions.
    """

    def __init__(self, waivers: list[Waiver], games: Optional[pd.DataFrame] = None):
        super().__init__()
        self.waivers = list(waivers)
        g = games if games is not None else pd.DataFrame(columns=["game_id", "game_date", "season_year", "game_type"])
        g = g.assign(game_date=pd.to_datetime(g.game_date).dt.date) if len(g) else g
        self._games = [(str(r.game_id), r.game_date, int(r.season_year), str(r.game_type))
                       for r in g[["game_id", "game_date", "season_year", "game_type"]].itertuples(index=False)]
        self._date_of = {gid: d for gid, d, _, _ in self._games}
        per_day: dict[date, set[str]] = {}
        for gid, d, _, _ in self._games:
            per_day.setdefault(d, set()).add(gid)
        self._by_game: dict[tuple[str, Optional[str], str], Waiver] = {}
        self._by_date: dict[tuple[str, Optional[str], date], Waiver] = {}
        for w in self.waivers:
            covered = {gid for gid, d, s, t in self._games if w.covers_game(gid, d, s, t)}
            for gid in covered:
                self._by_game.setdefault((w.source, w.check, gid), w)
            days = set(w.dates) | {d for d, ids in per_day.items() if ids and ids <= covered}
            for d in days:
                self._by_date.setdefault((w.source, w.check, d), w)
                if w.check is None:
                    self.setdefault((w.source, d), w)

    def for_date(self, source: str, day: date, check: Optional[str] = None) -> Optional[Waiver]:
        """The waiver covering every game of ``day`` for ``source`` (for ``check``, or for everything)."""
        w = self._by_date.get((source, None, day))
        if w is None and check is not None:
            w = self._by_date.get((source, check, day))
        return w

    def for_game(self, source: str, game_id: str, day: Optional[date] = None, check: Optional[str] = None) -> Optional[Waiver]:
        """The waiver covering one game (a date waiver covers each of its games)."""
        for key in ((source, None), (source, check)) if check is not None else ((source, None),):
            w = self._by_game.get((*key, str(game_id)))
            if w is not None:
                return w
            d = day or self._date_of.get(str(game_id))
            if d is not None and (w := self._by_date.get((*key, d))) is not None:
                return w
        return None

    def dates(self, source: str) -> set[date]:
        """Whole dates that are "not missing" for a source."""
        return {d for (s, d) in self if s == source}

    def games(self, source: str) -> set[str]:
        """Games that are "not missing" for a source (whole-date waivers included)."""
        out = {gid for (s, c, gid) in self._by_game if s == source and c is None}
        days = self.dates(source)
        return out | {gid for gid, d, _, _ in self._games if d in days}


def waived(params: RunParams, wh=None, games: Optional[pd.DataFrame] = None) -> WaiverIndex:
    """The run's waivers, resolved against the schedule: (source, date) -> waiver, and more.

    Game and game-type waivers need the schedule: ``games`` if given, else the warehouse's
    schedule (``wh``), else the schedule files in the bucket (before anything is loaded).
    """
    waivers = load_waivers(params)
    if games is None and any(w.needs_schedule for w in waivers):
        from .expected import schedule_games

        games = schedule_games(wh, params)
    return WaiverIndex(waivers, games)


def unknown_games(waivers: list[Waiver], games: pd.DataFrame) -> list[str]:
    """Warnings for game waivers naming a game id that no schedule of the run's seasons holds: such a
    waiver waives nothing (a typo, or the wrong season), which nobody would otherwise notice."""
    known = set(games.game_id.astype(str)) if len(games) else set()
    out = []
    for w in waivers:
        missing = [g for g in w.games if g not in known]
        if missing:
            out.append(f"waivers: {w.source} waiver for game(s) {', '.join(missing)} ({w.reason!r}): no completed game of the "
                       f"run's seasons' schedules has that id, so it waives nothing; check the game id and the seasons")
    return out


def waived_by_table(params: RunParams, wh=None, sources: Optional[Iterable[str]] = None) -> dict[str, frozenset[date]]:
    """``nba_raw.<source>`` -> the dates waived for it as a whole: what derive's checks excuse per upstream."""
    index = waived(params, wh)
    wanted = list(sources or DATED_SOURCES)
    return {f"nba_raw.{s}": frozenset(index.dates(s)) for s in wanted if index.dates(s)}
