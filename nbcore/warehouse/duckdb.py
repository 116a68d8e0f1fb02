"""The embedded default: a DuckDB file, one DuckDB schema per BigQuery dataset.

SQL arrives in BigQuery Standard SQL and is translated by sqlglot
(``nbcore.sqlfiles.to_duckdb``); ``@param`` query parameters become DuckDB ``$param``.

A file-backed warehouse holds the DuckDB file only while it works (``duckdb_access``): the
connection opens for a query or a transaction, waits with backoff when another process holds
the file, closes after a second of idleness, and is handed over between operations when
another process waits for it. So a ``runbook status`` or a notebook opened mid-backfill never
makes the run fail, and the run never makes them fail without saying who holds the file.
"""
from __future__ import annotations

import re
import threading
import time
import weakref
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Iterator, Mapping

import duckdb
import pandas as pd

from .. import profiling, schema
from ..sqlfiles import parameter_names, to_duckdb
from . import duckdb_access
from .base import (Warehouse, WarehouseError, WriteCount, change_statements, conform_frame, new_rows_select,
                   distinct_dates, row_hash)


class DuckDBWarehouse(Warehouse):
    name = "duckdb"

    def __init__(self, path: str | Path = ":memory:", *, read_only: bool = False, share: bool | None = None):
        self.path = str(path)
        if self.path != ":memory:" and not read_only:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        # a file is shared with other processes: held only while working (see duckdb_access)
        self.share = self.path != ":memory:" if share is None else share
        self._con: duckdb.DuckDBPyConnection | None = None
        self._in_tx = 0
        self._depth = 0  # nesting of _using() blocks: the connection is never closed inside one
        self._opened_at = 0.0
        self._idle_since = 0.0
        self._reaper: threading.Thread | None = None
        self._lock = threading.RLock()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                self._con = duckdb_access.connect(self.path, self.read_only) if self.share else \
                    duckdb.connect(self.path, read_only=self.read_only)
                self._opened_at = self._idle_since = time.monotonic()
                if self.share:
                    self._start_reaper()
            return self._con

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    @contextmanager
    def _using(self) -> Iterator[None]:
        """One operation on the file. Between operations a shared file is handed to a waiting process."""
        with self._lock:
            if (self.share and self._depth == 0 and self._in_tx == 0 and self._con is not None
                    and time.monotonic() - self._opened_at >= duckdb_access.MIN_HOLD_SECONDS
                    and duckdb_access.should_yield(self.path, self.read_only)):
                self.close()
                duckdb_access.let_waiters_in(self.path, self.read_only)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                self._idle_since = time.monotonic()

    def _start_reaper(self) -> None:
        """A daemon thread that closes the connection once it has been idle for IDLE_SECONDS."""
        if self._reaper is not None and self._reaper.is_alive():
            return
        me = weakref.ref(self)

        def reap() -> None:
            while True:
                time.sleep(duckdb_access.IDLE_SECONDS / 4)
                wh = me()
                if wh is None or wh._con is None:
                    return
                if not wh._lock.acquire(blocking=False):
                    continue
                try:
                    idle = time.monotonic() - wh._idle_since
                    if wh._con is not None and wh._depth == 0 and wh._in_tx == 0 and idle >= duckdb_access.IDLE_SECONDS:
                        wh.close()
                        return
                finally:
                    wh._lock.release()
                    del wh

        self._reaper = threading.Thread(target=reap, name=f"duckdb-idle-close:{Path(self.path).name}", daemon=True)
        self._reaper.start()

    # -- queries -----------------------------------------------------------
    def _run(self, sql: str, params: Mapping[str, Any] | None, label: str):
        duck_sql = to_duckdb(sql)
        wanted = parameter_names(sql)
        params = dict(params or {})
        missing = wanted - params.keys()
        if missing:
            raise WarehouseError(f"{label or 'query'}: missing query parameters {sorted(missing)}")
        bound = {k: _py(params[k]) for k in wanted}
        try:
            with profiling.statement():
                return self.con.execute(duck_sql, bound) if bound else self.con.execute(duck_sql)
        except duckdb.Error as e:
            if duckdb_access.is_damaged(e):  # a bad block found by this query: the file, not the query
                raise duckdb_access.DuckDBDamagedError(self.path, e) from e
            raise WarehouseError(f"{label or 'query'} failed on DuckDB: {e}") from e

    def query(self, sql, params=None, *, label=""):
        with self._using():
            return self._run(sql, params, label).df()

    def execute(self, sql, params=None, *, label=""):
        with self._using():
            self._run(sql, params, label)

    # -- schema --------------------------------------------------------------
    def ensure_schema(self) -> None:
        if self.read_only:
            return
        with self._using():
            for dataset in schema.datasets():
                self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {dataset}")
            for t in schema.all_tables():
                self.con.execute(t.duckdb_ddl())

    def drop_all(self) -> None:
        """Drop every dataset schema and its tables, then recreate them empty."""
        if self.read_only:
            raise WarehouseError(f"drop_all: DuckDB file {self.path} was opened read-only")
        with self._using():
            for dataset in schema.datasets():
                self.con.execute(f"DROP SCHEMA IF EXISTS {dataset} CASCADE")
        self.ensure_schema()

    def table_exists(self, fqn: str) -> bool:
        dataset, name = fqn.split(".")
        with self._using():
            return self._table_exists(dataset, name)

    def _table_exists(self, dataset: str, name: str) -> bool:
        n = self.con.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [dataset, name],
        ).fetchone()[0]
        return bool(n)

    # -- writes --------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._using():
            outer = self._in_tx == 0
            if outer:
                self.con.execute("BEGIN TRANSACTION")
            self._in_tx += 1
            try:
                yield
            except BaseException:
                self._in_tx -= 1
                if outer:
                    self.con.execute("ROLLBACK")
                raise
            else:
                self._in_tx -= 1
                if outer:
                    with profiling.part("commit"), profiling.statement():
                        self.con.execute("COMMIT")

    def replace_range(self, table, start, end, *, sql=None, params=None, frame=None, where=None):
        t = schema.table(table)
        if (sql is None) == (frame is None):
            raise WarehouseError(f"replace_range({t.fqn}): give exactly one of sql= or frame=")
        p = dict(params or {})
        p.update(_rr_start=start, _rr_end=end)
        cond = f"{t.date_column} BETWEEN @_rr_start AND @_rr_end" + (f" AND ({where})" if where else "")
        cols = ", ".join(t.columns)
        with self.transaction():
            self._run(f"DELETE FROM {t.fqn} WHERE {cond}", p, f"replace {t.fqn}")
            if frame is not None:
                if frame.empty:
                    return 0
                data = conform_frame(t, frame)
                _check_range(t, data, start, end)
                self.con.register("_incoming", data)
                try:
                    casts = ", ".join(f"CAST({c} AS {schema.DUCKDB_TYPES[typ]}) AS {c}" for c, typ in t.columns.items())
                    self.con.execute(f"INSERT INTO {t.fqn} ({cols}) SELECT {casts} FROM _incoming")
                finally:
                    self.con.unregister("_incoming")
                return len(data)
            before = self._count(t, cond, p)
            select = sql.strip().rstrip(";")
            self._run(
                f"INSERT INTO {t.fqn} ({cols}) SELECT {cols} FROM ({select}) AS _new "
                f"WHERE _new.{t.date_column} BETWEEN @_rr_start AND @_rr_end",
                p,
                f"replace {t.fqn}",
            )
            return self._count(t, cond, p) - before

    def _count(self, t: schema.Table, cond: str, p: dict) -> int:
        return int(self._run(f"SELECT COUNT(*) FROM {t.fqn} WHERE {cond}", p, "count").fetchone()[0])

    def write_changes(self, table, start, end, *, sql, params=None, where=None):
        """``Warehouse.write_changes`` with the new rows computed once, into a temporary table
        (the generic version evaluates the SELECT twice: once to delete, once to insert), rows
        compared by an engine hash (``row_hash``) instead of their JSON text, and the dates of the
        deleted and inserted rows returned (``RETURNING``), so the write knows exactly which of
        its dates changed (``WriteCount.changed_on``)."""
        t = schema.table(table)
        staged = "_write_changes_new"
        delete, insert, p = change_statements(t, start, end, sql, params, where, staged=staged, image=row_hash)
        label = f"replace {t.fqn}"
        returning = f" RETURNING {t.date_column}"
        with self.transaction():
            self._run(f"DROP TABLE IF EXISTS {staged}", None, label)
            with profiling.part("sql compute"):
                self._run(f"CREATE TEMP TABLE {staged} AS {new_rows_select(t, sql)}", p, label)
            try:
                with profiling.part("change comparison"):
                    gone = self._run(delete + returning, p, label).fetchnumpy()[t.date_column]
                    new = self._run(insert + returning, p, label).fetchnumpy()[t.date_column]
            finally:
                self._run(f"DROP TABLE IF EXISTS {staged}", None, label)
        return WriteCount(inserted=len(new), deleted=len(gone), changed_dates=distinct_dates(gone, new),
                          dates_known=True)

    def dml(self, sql, params=None, *, label=""):
        with self._using():
            row = self._run(sql, params, label).fetchone()
            return int(row[0]) if row else 0

    def append(self, table: str, frame: pd.DataFrame) -> int:
        t = schema.table(table)
        if frame.empty:
            return 0
        data = conform_frame(t, frame)
        with self._using():
            self.con.register("_incoming", data)
            try:
                casts = ", ".join(f"CAST({c} AS {schema.DUCKDB_TYPES[typ]}) AS {c}" for c, typ in t.columns.items())
                with profiling.statement():
                    self.con.execute(f"INSERT INTO {t.fqn} SELECT {casts} FROM _incoming")
            except duckdb.Error as e:
                raise WarehouseError(f"append to {t.fqn} failed: {e}") from e
            finally:
                self.con.unregister("_incoming")
        return len(data)


def _py(value: Any) -> Any:
    """DuckDB binds python dates, numbers, strings and lists directly; tuples/sets become lists."""
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return value


def _check_range(t: schema.Table, data: pd.DataFrame, start: date, end: date) -> None:
    dates = pd.to_datetime(data[t.date_column]).dt.date
    outside = data[(dates < start) | (dates > end)]
    if len(outside):
        raise WarehouseError(
            f"replace {t.fqn} [{start}..{end}]: {len(outside)} rows fall outside the range "
            f"(first: {outside[t.date_column].iloc[0]}); nothing was written"
        )
