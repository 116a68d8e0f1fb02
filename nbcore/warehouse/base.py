"""The backend interface every warehouse implements.

A backend runs BigQuery Standard SQL (text or a ``.sql`` file) with query parameters,
returns DataFrames, and replaces a date range of a table atomically. Everything above
this layer (stages, validate, tests) talks only to this interface.
"""
from __future__ import annotations

from ..errors import RunbookError

import hashlib
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from .. import schema
from ..sqlfiles import read_sql

# Columns that record when/by whom a row was written; they change on every re-run
# and are left out of table checksums ("running a stage twice changes nothing").
AUDIT_COLUMNS = frozenset({"loaded_at", "processed_at", "created_at", "graded_at", "run_id"})


class WarehouseError(RunbookError, RuntimeError):
    """A query or write failed; the message names the table or SQL file involved."""


class CommitFailed(WarehouseError):
    """A transaction committed in Python but carried to a later job (``Warehouse.pipelined``)
    failed there. ``committed``: how many of the carried transactions before it did commit."""

    def __init__(self, message: str, committed: int = 0):
        super().__init__(message)
        self.committed = committed


class Warehouse(ABC):
    """A place that holds the pipeline's datasets."""

    name: str = "abstract"
    # dates of one raw source the load stage writes per transaction: a transaction is cheap on
    # an embedded database, and a failed batch is retried date by date, so small batches there
    load_batch_dates: int = 40

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

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """A block in which a committed transaction may be sent later, with the backend's next job
        (BigQuery: a round trip saved per transaction). Here every commit is immediate."""
        yield

    def pending_commits(self) -> int:
        """Transactions committed in Python but not confirmed by the backend yet (see ``pipelined``)."""
        return 0

    def flush_commits(self) -> None:
        """Send what ``pipelined`` carried; raises ``CommitFailed`` if one of them fails."""

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

    @abstractmethod
    def dml(self, sql: str, params: Mapping[str, Any] | None = None, *, label: str = "") -> int:
        """Run one DML statement (BigQuery Standard SQL) and return the rows it affected."""

    def write_changes(
        self,
        table: str,
        start: date,
        end: date,
        *,
        sql: str,
        params: Mapping[str, Any] | None = None,
        where: str | None = None,
    ) -> "WriteCount":
        """Make the rows of ``table`` in [start, end] (narrowed by ``where``) equal the SELECT ``sql``,
        touching only rows whose value changes.

        Why: a restatement recomputes partitions that *may* have changed (a filled date inside
        their lookback window); most of their rows come out identical. Deleting and rewriting all
        of them would make every restated row look new (audit columns, bytes written, downstream
        staleness). Two statements, in the caller's transaction: delete the rows that the new
        result no longer contains (compared on every column but the audit columns), then insert
        the new rows that the table does not hold yet. Unchanged rows keep their audit columns.
        Returns rows inserted and deleted; both 0 means the partition did not change.
        """
        t = schema.table(table)
        delete, insert, p = change_statements(t, start, end, sql, params, where)
        with self.transaction():
            deleted = self.dml(delete, p, label=f"replace {t.fqn}")
            inserted = self.dml(insert, p, label=f"replace {t.fqn}")
        return WriteCount(inserted=inserted, deleted=deleted)

    def write_frame_changes(self, table: str, dates: list[date], frame: pd.DataFrame) -> "WriteCount":
        """``write_changes`` for rows computed in Python: make ``table`` on ``dates`` equal ``frame``,
        deleting and inserting only the rows whose value (audit columns aside) differs."""
        t = schema.table(table)
        dates = sorted(set(dates))
        if not dates:
            return WriteCount(dates_known=True)
        vals = value_columns(t)
        old = self.query(f"SELECT {', '.join(vals)} FROM {t.fqn} WHERE {t.date_column} IN UNNEST(@_dates)",
                         {"_dates": dates}, label=f"read {t.fqn}")
        new = conform_frame(t, frame)
        old_sig, new_sig = row_signatures(t, old), row_signatures(t, new)
        changed = new[~new_sig.isin(set(old_sig))]
        gone = old[~old_sig.isin(set(new_sig))]
        return replace_rows(self, t, dates, changed, key_strings(t, gone), gone[t.date_column])

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


def replace_rows(wh: "Warehouse", t: schema.Table, dates: list[date], changed: pd.DataFrame, gone_keys,
                 gone_dates) -> "WriteCount":
    """The write of a change-only frame write: delete the rows of ``dates`` whose key is changed
    or gone, insert ``changed``, in one transaction; the counts and the dates that changed. Keys and
    dates are made distinct on arrays (a restated predict stage rewrites ~300 k rows)."""
    keys = np.unique(np.concatenate([np.asarray(gone_keys, dtype=object), key_strings(t, changed)]))
    if not len(keys):
        return WriteCount(dates_known=True)
    key_expr = "CONCAT(" + ", '|', ".join(f"CAST({k} AS STRING)" for k in t.key) + ")"
    with wh.transaction():
        wh.replace_range(t.fqn, dates[0], dates[-1], frame=changed, params={"_dates": dates, "_keys": list(keys)},
                         where=f"{t.date_column} IN UNNEST(@_dates) AND {key_expr} IN UNNEST(@_keys)")
    return WriteCount(inserted=len(changed), deleted=len(gone_keys),
                      changed_dates=distinct_dates(changed[t.date_column], gone_dates), dates_known=True)


def distinct_dates(*columns) -> frozenset:
    """The distinct dates of date columns (numpy arrays, Series, lists): ``np.unique`` first, so only
    the few distinct values become Python dates (a season-sized write touches ~10^5 rows; converting
    each row's date cost more than the write itself)."""
    values = [np.asarray(c).astype("datetime64[D]") for c in columns if len(c)]
    if not values:
        return frozenset()
    return frozenset(pd.DatetimeIndex(np.unique(np.concatenate(values))).date)


@dataclass(frozen=True)
class WriteCount:
    """Rows a change-only write inserted and deleted (an updated row counts once in each)."""

    inserted: int = 0
    deleted: int = 0
    changed_dates: frozenset = frozenset()  # dates whose rows changed, where the write knows them
    dates_known: bool = False  # changed_dates is exact (every changed date, and only those)

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.deleted)

    def changed_on(self, day: date) -> bool:
        """Whether the rows of ``day`` changed: exact where the write knows its dates, else the
        whole write's flag (never misses a change)."""
        return day in self.changed_dates if self.dates_known else self.changed

    def __add__(self, other: "WriteCount") -> "WriteCount":
        return WriteCount(self.inserted + other.inserted, self.deleted + other.deleted,
                          self.changed_dates | other.changed_dates, self.dates_known and other.dates_known)


def value_columns(t: schema.Table) -> list[str]:
    """The columns that carry a row's value: all but the audit columns."""
    return [c for c in t.columns if c not in AUDIT_COLUMNS]


def new_rows_select(t: schema.Table, sql: str) -> str:
    """The rows a SELECT produces inside the write's range, in the table's column order."""
    cols = ", ".join(t.columns)
    return (f"SELECT {cols} FROM ({sql.strip().rstrip(';')}) AS _new "
            f"WHERE _new.{t.date_column} BETWEEN @_rr_start AND @_rr_end")


def change_statements(t: schema.Table, start: date, end: date, sql: str, params: Mapping[str, Any] | None,
                      where: str | None, staged: str | None = None,
                      image: Callable[[schema.Table, str], str] | None = None) -> tuple[str, str, dict]:
    """The DELETE and the INSERT of a change-only write, and their parameters: delete the rows of
    the range the new result no longer contains (value columns compared), then insert the new
    rows the table does not hold yet (run in this order, in one transaction). ``staged`` names a
    table that already holds the new rows (``new_rows_select`` of ``sql``), read instead of ``sql``.
    ``image`` is the row comparison expression (default ``row_image``; DuckDB uses ``row_hash``)."""
    image = image or row_image
    p = dict(params or {})
    p.update(_rr_start=start, _rr_end=end)
    cond = f"{t.date_column} BETWEEN @_rr_start AND @_rr_end" + (f" AND ({where})" if where else "")
    cols = ", ".join(t.columns)
    new_rows = f"SELECT {cols} FROM {staged}" if staged else new_rows_select(t, sql)
    delete = (f"DELETE FROM {t.fqn} WHERE {cond} AND {image(t)} NOT IN "
              f"(SELECT {image(t, '_n')} FROM ({new_rows}) AS _n)")
    insert = (f"INSERT INTO {t.fqn} ({cols}) SELECT {cols} FROM ({new_rows}) AS _n "
              f"WHERE {image(t, '_n')} NOT IN (SELECT {image(t)} FROM {t.fqn} WHERE {cond})")
    return delete, insert, p


def row_hash(t: schema.Table, alias: str = "") -> str:
    """A 64-bit hash of the value columns, each cast to its declared type, computed by the engine
    (DuckDB's variadic ``HASH``, which sqlglot passes through): comparing rows by it costs a
    fraction of serialising each row to JSON (``row_image``). NULLs hash alike, so NULL equals
    NULL as in ``row_image``. Two different rows of one partition collide with probability ~2^-64."""
    prefix = f"{alias}." if alias else ""
    return "HASH(" + ", ".join(f"CAST({prefix}{c} AS {t.columns[c]})" for c in value_columns(t)) + ")"


def row_image(t: schema.Table, alias: str = "") -> str:
    """A BigQuery expression that is equal for two rows exactly when their values are (NULLs
    included): the JSON text of a STRUCT of the value columns, each cast to its declared type.
    sqlglot turns it into DuckDB's
    ``CAST(TO_JSON({...}) AS TEXT)``."""
    prefix = f"{alias}." if alias else ""
    # each value cast to the column's type first: a computed 0.94 may be NUMERIC in flight and
    # FLOAT64 once stored, and must compare equal
    return "TO_JSON_STRING(STRUCT(" + ", ".join(
        f"CAST({prefix}{c} AS {t.columns[c]}) AS {c}" for c in value_columns(t)) + "))"


def _normalized(t: schema.Table, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Columns in one comparable form per BigQuery type, whatever the frame's dtypes are."""
    out = {}
    for c in columns:
        col = frame[c] if c in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        typ = t.columns[c]
        if typ in ("FLOAT64", "INT64", "NUMERIC", "BOOL"):
            out[c] = pd.to_numeric(col.astype(object).where(col.notna(), None), errors="coerce").astype("float64")
        elif typ in ("DATE", "TIMESTAMP"):
            out[c] = pd.to_datetime(col, errors="coerce").astype("datetime64[ns]")
        else:
            out[c] = col.astype(object).where(col.notna(), "\x00").astype(str)
    return pd.DataFrame(out, index=frame.index)


def row_signatures(t: schema.Table, frame: pd.DataFrame) -> pd.Series:
    """One 64-bit hash per row of its value columns: equal rows, equal hashes (NULLs included)."""
    if frame.empty:
        return pd.Series([], dtype="uint64", index=frame.index)
    return pd.util.hash_pandas_object(_normalized(t, frame, value_columns(t)), index=False)


def key_strings(t: schema.Table, frame: pd.DataFrame) -> np.ndarray:
    """``k1|k2|…`` per row, as ``CONCAT(CAST(k AS STRING), '|', …)`` spells it in SQL (an object
    array, built column by column)."""
    if frame.empty:
        return np.empty(0, dtype=object)
    out = None
    for k in t.key:
        col = frame[k]
        if t.columns[k] == "DATE":
            col = pd.to_datetime(col).dt.strftime("%Y-%m-%d")
        col = col.astype(str)
        out = col if out is None else out + "|" + col
    return out.to_numpy(dtype=object)


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

