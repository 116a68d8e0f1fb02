"""Chunks: how derive, predict and grade cut their dates into transactions.

A chunk holds the dates within ``chunk_days`` calendar days of its first date (``chunk_days: 1``
is the platform's date-by-date behaviour). One definition, so every stage cuts the same way and
the plan's chunks are the stages' chunks.
"""
from __future__ import annotations

from datetime import date
from typing import Iterable


def make_chunks(dates: Iterable[date], chunk_days: int) -> list[list[date]]:
    """Group dates into chunks: each holds the dates within ``chunk_days`` calendar days of its first."""
    chunks: list[list[date]] = []
    for d in sorted(set(dates)):
        if chunks and (d - chunks[-1][0]).days < chunk_days:
            chunks[-1].append(d)
        else:
            chunks.append([d])
    return chunks
