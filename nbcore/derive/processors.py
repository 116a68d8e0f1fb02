"""The derive stage's processors: phase 3 then phase 4, in the platform's processor order.

Each processor writes one table from one SQL file (``nbcore/sql/derive/<table>.sql``, a SELECT
over ``@start_date``..``@end_date``). Its upstreams and lookback window come from the schema
(``nbcore/schema/*.yaml``), so the defensive checks and the docs never disagree with the code.
The processor name recorded in ``processor_run_history`` is the bare table name; upstream raw
tables are looked up there under their bare names too (what the load stage records).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import schema

# The platform's order: analytics first, then precompute as handed off
# (zone analyses -> composite factors -> daily cache -> feature store).
PROCESSOR_ORDER = (
    "player_game_summary",
    "team_offense_game_summary",
    "team_defense_game_summary",
    "upcoming_player_game_context",
    "team_defense_zone_analysis",
    "player_shot_zone_analysis",
    "player_composite_factors",
    "player_daily_cache",
    "ml_feature_store_v2",
)

# The schedule is the reference every check counts against, not a dependency that can have gaps.
REFERENCE_TABLES = frozenset({"nba_raw.nbac_schedule"})


@dataclass(frozen=True)
class Processor:
    """One derive step: a table, the SQL that builds it, what it reads and how far back."""

    name: str

    @property
    def table(self) -> schema.Table:
        return schema.table(self.name)

    @property
    def phase(self) -> str:
        return self.table.phase

    @property
    def sql_name(self) -> str:
        return f"derive/{self.name}"

    @property
    def upstreams(self) -> tuple[str, ...]:
        """Upstream tables (``dataset.table``) the defensive checks look at."""
        return tuple(u for u in self.table.upstream if u not in REFERENCE_TABLES)

    @property
    def lookback_days(self) -> int:
        return self.table.window_days

    @property
    def lookback_games(self) -> int:
        return self.table.window_games

    @property
    def sql_parameters(self) -> dict[str, int]:
        """The schema's lookbacks as the query parameters the SQL reads (``@lookback_days``,
        ``@lookback_games_preceding``, ...): each window is defined once, in ``nbcore/schema``,
        and the SQL never repeats the number (``tests/test_rules.py`` checks both)."""
        return self.table.lookback_parameters()

    def lookback_text(self) -> str:
        if self.lookback_days:
            return f"{self.lookback_days}-day lookback"
        if self.lookback_games:
            return f"{self.lookback_games}-game lookback"
        return "the chunk's own dates"


PROCESSORS: tuple[Processor, ...] = tuple(Processor(n) for n in PROCESSOR_ORDER)
DERIVED_TABLES: tuple[str, ...] = tuple(p.table.fqn for p in PROCESSORS)


def processor(name: str) -> Processor:
    bare = name.split(".")[-1]
    if bare not in PROCESSOR_ORDER:
        raise KeyError(f"unknown derive processor {name!r}; processors are {', '.join(PROCESSOR_ORDER)}")
    return Processor(bare)


def selected_processors(params) -> list[Processor]:
    """The processors a run's ``tables`` parameter selects (all when it is empty), in order."""
    return [p for p in PROCESSORS if params.table_selected(p.name)]
