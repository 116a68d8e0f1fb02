"""Table definitions for every dataset of the pipeline, written once.

The YAML files beside this module are the single source of truth: the DuckDB backend
creates tables from them, the BigQuery backend creates partitioned and clustered
tables from them, validate uses their keys, and derive uses their upstreams.
Types are BigQuery Standard SQL types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

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

    def duckdb_ddl(self) -> str:
        cols = ",\n  ".join(
            f"{name} {DUCKDB_TYPES[typ]}"
            for name, typ in self.columns.items()
        )
        return f"CREATE TABLE IF NOT EXISTS {self.fqn} (\n  {cols}\n)"


@lru_cache(maxsize=1)
def _load() -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for dataset in DATASET_ORDER:
        spec = yaml.safe_load((SCHEMA_DIR / f"{dataset}.yaml").read_text())
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
                lookback=dict(t.get("lookback", {})),
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
