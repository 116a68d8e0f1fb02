"""The backend interface every warehouse implements.

A backend runs BigQuery Standard SQL (text or a ``.sql`` file) with query parameters,
returns DataFrames, and replaces a date range of a table atomically. Everything above
this layer (stages, validate, tests) talks only to this interface.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from contextlib import contextmanager
from datetime import date
from typing import Any, Iterator, Mapping

import pandas as pd

from .. import schema
from ..sqlfiles import read_sql

# Columns that record when/by whom a row was written; they change on every re-run
# and are left out of table checksums ("running a stage twice changes nothing").
AUDIT_COLUMNS = frozenset({"loaded_at", "processed_at", "created_at", "graded_at", "run_id"})


class WarehouseError(RuntimeError):
    """A query or write failed; the message names the table or SQL file involved."""


class Warehouse(ABC):
    """A place that holds the pipeline's datasets."""

    name: str = "abstract"

    # -- queries -----------------------------------------------------------
    @abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None, *, label: str = "") -> pd.DataFrame:
        """Run one BigQuery Standard SQL statement and return its rows."""

    @abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None, *, label: str = "") -> None:
        """Run BigQuery Standard SQL that returns nothing (DDL, DML)."""

    def query_file(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run ``nbcore/sql/<name>.sql``."""
        return self.query(read_sql(name), params, label=name)

    # -- schema --------------------------------------------------------------
    @abstractmethod
    def ensure_schema(self) -> None:
        """Create every dataset and table of ``nbcore.schema`` if missing (idempotent)."""

    @abstractmethod
    def table_exists(self, fqn: str) -> bool:
        """Whether ``dataset.table`` exists."""

    @abstractmethod
    def drop_all(self) -> None:
        """Delete every dataset of ``nbcore.schema`` with its tables and recreate them empty.

        The demo build starts from nothing this way on every backend.
        """

    # -- writes --------------------------------------------------------------
    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside commits together or not at all."""

    @abstractmethod
    def replace_range(
        self,
        table: str,
        start: date,
        end: date,
        *,
        sql: str | None = None,
        params: Mapping[str, Any] | None = None,
        frame: pd.DataFrame | None = None,
        where: str | None = None,
    ) -> int:
        """Atomically replace the rows of ``table`` whose date column is in [start, end].

        The new rows come from a BigQuery SELECT (``sql`` + ``params``) or from a
        DataFrame. ``where`` narrows the delete further (a BigQuery boolean expression
        over the table's columns, using the same ``params``). Returns rows inserted.
        """

    @abstractmethod
    def append(self, table: str, frame: pd.DataFrame) -> int:
        """Append rows (bookkeeping tables only)."""

    def job_summary(self) -> dict | None:
        """Jobs run and bytes billed so far, for a stage record (BigQuery); None where nothing is billed."""
        return None

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers shared by every backend -------------------------------------
    def read_table(self, fqn: str, columns: list[str] | None = None) -> pd.DataFrame:
        t = schema.table(fqn)
        cols = ", ".join(columns or t.columns)
        return self.query(f"SELECT {cols} FROM {t.fqn}", label=f"read {t.fqn}")

    def row_count(self, fqn: str) -> int:
        t = schema.table(fqn)
        return int(self.query(f"SELECT COUNT(*) AS n FROM {t.fqn}").iloc[0, 0])

    def checksum(self, fqn: str) -> str:
        """Order-independent checksum of a table's content, audit columns left out."""
        t = schema.table(fqn)
        cols = [c for c in t.columns if c not in AUDIT_COLUMNS]
        frame = self.read_table(t.fqn, cols)
        if frame.empty:
            return hashlib.sha256(b"empty").hexdigest()[:16]
        frame = frame.astype("string").fillna("<NULL>")
        frame = frame.sort_values(cols, kind="mergesort").reset_index(drop=True)
        row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        return hashlib.sha256(row_hashes.tobytes()).hexdigest()[:16]

    def checksums(self, tables: list[str] | None = None) -> dict[str, str]:
        names = tables or [t.fqn for t in schema.all_tables() if t.phase != "ref"]
        return {name: self.checksum(name) for name in names}


def conform_frame(table: schema.Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Put a frame's columns in the table's order, adding missing (nullable) columns as NULL."""
    unknown = set(frame.columns) - set(table.columns)
    if unknown:
        raise WarehouseError(f"{table.fqn}: unknown columns {sorted(unknown)}")
    out = frame.copy()
    for col in table.columns:
        if col not in out.columns:
            out[col] = None
    return out[list(table.columns)]
