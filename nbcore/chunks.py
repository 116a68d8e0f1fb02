"""Chunks: how derive, predict and grade cut their dates into transactions.

A chunk holds the dates within ``chunk_days`` calendar days of its first date (``chunk_days: 1``
is the platform's date-by-date behaviour), and never two seasons' dates when the seasons are
known. One definition, so every stage cuts the same way and the plan's chunks are the stages'
chunks.

Why seasons: every game window in the SQL is per season, but a chunk's SQL reads its whole
lookback (up to a year of history) once per chunk. Thirty-day chunks read a season's history
about twelve times; one chunk per season (the default, ``chunk_days: 366``) reads it once, and
is as fast as one chunk for everything while still committing, and resuming, season by season.
"""
from __future__ import annotations

from datetime import date
from typing import Iterable, Mapping, Optional

DEFAULT_CHUNK_DAYS = 366  # at most a season: one chunk per season


def make_chunks(dates: Iterable[date], chunk_days: int,
                season_of: Optional[Mapping[date, int]] = None) -> list[list[date]]:
    """Group dates into chunks: each holds the dates within ``chunk_days`` calendar days of its
    first, and (given ``season_of``) of its first date's season only."""
    season_of = season_of or {}
    chunks: list[list[date]] = []
    for d in sorted(set(dates)):
        if (chunks and (d - chunks[-1][0]).days < chunk_days
                and season_of.get(d) == season_of.get(chunks[-1][0])):
            chunks[-1].append(d)
        else:
            chunks.append([d])
    return chunks
