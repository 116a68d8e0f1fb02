"""Coverage statements built from the schema: rows per game and date in many tables at once.

Validate (the completeness matrix) and derive (its defensive checks and the rows it records) ask
the same question of many tables: which games of ``[@start_date, @end_date]`` have rows, and how
many. The answer is one ``UNION ALL`` of a small ``GROUP BY`` per table (one scan per table,
date-partitioned on BigQuery). It is generated here from ``nbcore/schema`` as sqlglot
expressions, so a table added to the schema is covered without anyone editing SQL; table and
column names come from the schema, values stay query parameters. ``nbcore.sqlfiles`` serves the
statements under their file names (``validate/present_games``, ``derive/present_games``), so
callers read them like any other SQL file.
"""
from __future__ import annotations

from functools import reduce
from typing import Callable, Iterable

from sqlglot import exp

from . import Table, tracked_tables

# the phases derive reads (raw) or writes (analytics, precompute)
DERIVE_PHASES = ("2", "3", "4")


def _per_table(t: Table, label: str) -> exp.Select:
    date = exp.column(t.date_column)
    return (
        exp.select(
            exp.alias_(exp.Literal.string(label), "table_name"),
            date if t.date_column == "game_date" else exp.alias_(date, "game_date"),
            exp.column("game_id"),
            exp.alias_(exp.Count(this=exp.Star()), "row_count"),
        )
        .from_(exp.table_(t.name, db=t.dataset))
        .where(exp.Between(this=exp.column(t.date_column), low=exp.Parameter(this=exp.var("start_date")),
                           high=exp.Parameter(this=exp.var("end_date"))))
        .group_by(exp.column(t.date_column), exp.column("game_id"))
    )


def present_games(tables: Iterable[Table], label: Callable[[Table], str]) -> str:
    """BigQuery SQL: ``table_name, game_date, game_id, row_count`` for every game with rows in
    any of *tables* in ``[@start_date, @end_date]``; ``label(table)`` names the table."""
    selects = [_per_table(t, label(t)) for t in tables]
    if not selects:
        raise ValueError("present_games needs at least one table")
    return reduce(lambda a, b: exp.union(a, b, distinct=False), selects).sql(dialect="bigquery", pretty=True)


def validate_present_games() -> str:
    """Every tracked table (phases 2 to 5B, the schedule left out), named by its bare name."""
    return present_games(tracked_tables(), lambda t: t.name)


def derive_present_games() -> str:
    """The tables derive reads or writes (phases 2, 3 and 4), named ``dataset.table``."""
    return present_games([t for t in tracked_tables() if t.phase in DERIVE_PHASES], lambda t: t.fqn)
