"""Table definitions for every dataset of the pipeline, written once.

The YAML files beside this module are the single source of truth: the DuckDB backend
creates tables from them, the BigQuery backend creates partitioned and clustered
tables from them, validate uses their keys, and derive uses their upstreams.
Types are BigQuery Standard SQL types.

Every lookback window is defined here once, in a table's ``lookback`` mapping (name -> a
positive whole number). ``days`` and ``games`` are the window a partition for date D reads from
its upstream tables: ``days`` N = the N calendar days before D, ``games`` N = the last N games of
the season before D. Lineage's window rule, ``why`` and derive's defensive checks read those two.
Any other name is a window the table's SQL uses on its own (e.g. ``season_days``: how far back
a season can reach). The SQL never repeats a number: ``Table.lookback_parameters`` hands each to
it as the query parameter ``@lookback_<name>``, and a count of games (``games``, ``*_games``)
also as ``@lookback_<name>_preceding`` = N - 1, the frame offset of "the last N rows"
(``ROWS BETWEEN @lookback_games_preceding PRECEDING AND CURRENT ROW``), because BigQuery accepts
only a literal or a bare parameter as a window frame offset, not ``@n - 1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import re

import yaml

SCHEMA_DIR = Path(__file__).parent
DATASET_ORDER = ["nba_raw", "nba_analytics", "nba_precompute", "nba_predictions", "nba_reference"]

DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38, 9)",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
}


@dataclass(frozen=True)
class Table:
    """One table: its columns (name -> BigQuery type), key, partitioning and lineage."""

    dataset: str
    name: str
    phase: str
    description: str
    columns: dict[str, str]
    key: tuple[str, ...]
    partition_by: str
    cluster_by: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    lookback: dict[str, int] = field(default_factory=dict)
    # BigQuery refuses a query on the table without a filter on the date column (big tables).
    require_partition_filter: bool = False

    @property
    def fqn(self) -> str:
        """``dataset.table``, the name used in SQL."""
        return f"{self.dataset}.{self.name}"

    @property
    def date_column(self) -> str:
        return self.partition_by

    @property
    def window_days(self) -> int:
        """N when a partition for D reads its upstreams' N calendar days before D (else 0)."""
        return int(self.lookback.get("days", 0))

    @property
    def window_games(self) -> int:
        """N when a partition for D reads each player's or team's last N games before D (else 0)."""
        return int(self.lookback.get("games", 0))

    def lookback_parameters(self) -> dict[str, int]:
        """Every lookback as the query parameters the table's SQL reads (see the module doc)."""
        out: dict[str, int] = {}
        for name, n in self.lookback.items():
            out[f"lookback_{name}"] = n
            if is_game_count(name):
                out[f"lookback_{name}_preceding"] = n - 1
        return out

    def duckdb_ddl(self) -> str:
        cols = ",\n  ".join(
            f"{name} {DUCKDB_TYPES[typ]}"
            for name, typ in self.columns.items()
        )
        return f"CREATE TABLE IF NOT EXISTS {self.fqn} (\n  {cols}\n)"


_LOOKBACK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def is_game_count(lookback_name: str) -> bool:
    """A lookback counted in games (``games``, ``short_games``), not in days."""
    return lookback_name == "games" or lookback_name.endswith("_games")


def _lookback(dataset: str, name: str, spec) -> dict[str, int]:
    spec = spec or {}
    where = f"nbcore/schema/{dataset}.yaml: {name}.lookback"
    if not isinstance(spec, dict):
        raise ValueError(f"{where} must be a mapping of window name -> whole number, e.g. {{days: 15}}; got {spec!r}")
    out = {}
    for key, n in spec.items():
        if not isinstance(key, str) or not _LOOKBACK_NAME.match(key):
            raise ValueError(f"{where}: {key!r} is not a valid window name (lower-case letters, digits, _)")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{where}.{key} must be a whole number of days or games >= 1, got {n!r}")
        out[key] = n
    if "days" in out and "games" in out:
        raise ValueError(f"{where}: a table's upstream window is either days or games, not both")
    return out


#: libyaml's loader when PyYAML was built with it: the same safe loading, parsed in C (the pure-Python
#: parser took a quarter of a second of every ``runbook status`` reading these files)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=1)
def _load() -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for dataset in DATASET_ORDER:
        spec = yaml.load((SCHEMA_DIR / f"{dataset}.yaml").read_text(), Loader=_YAML_LOADER)
        for name, t in spec["tables"].items():
            for col, typ in t["columns"].items():
                if typ not in DUCKDB_TYPES:
                    raise ValueError(f"schema/{dataset}.yaml: {name}.{col} has unknown type {typ!r}")
            table = Table(
                dataset=dataset,
                name=name,
                phase=str(t.get("phase", spec["phase"])),
                description=t.get("description", ""),
                columns=dict(t["columns"]),
                key=tuple(t["key"]),
                partition_by=t["partition_by"],
                cluster_by=tuple(t.get("cluster_by", ())),
                upstream=tuple(t.get("upstream", ())),
                lookback=_lookback(dataset, name, t.get("lookback")),
                require_partition_filter=bool(t.get("require_partition_filter", False)),
            )
            tables[table.fqn] = table
            tables.setdefault(name, table)
    return tables


def all_tables() -> list[Table]:
    """Every table, in dataset (phase) order and file order."""
    seen, out = set(), []
    for t in _load().values():
        if t.fqn not in seen:
            seen.add(t.fqn)
            out.append(t)
    return out


def table(name: str) -> Table:
    """Look a table up by ``dataset.table`` or bare table name."""
    try:
        return _load()[name]
    except KeyError:
        known = ", ".join(t.name for t in all_tables())
        raise KeyError(f"unknown table {name!r}; known tables: {known}") from None


def datasets() -> list[str]:
    return list(DATASET_ORDER)


def tracked_tables() -> list[Table]:
    """Tables whose completeness is measured against the schedule (all phases but bookkeeping)."""
    return [t for t in all_tables() if t.phase != "ref" and t.name != "nbac_schedule"]


PHASES = ["2", "3", "4", "5", "5B"]
