"""Change-only writes of prediction rows, against the current rows read before the transaction.

``Warehouse.write_frame_changes`` reads a chunk's current rows inside the chunk's transaction:
on BigQuery that read is a job of its own and opens a session. The predict stage instead reads
the current rows of *all* its dates once, before its first chunk (chunks write disjoint dates,
so an earlier chunk never changes what a later one finds), keeps only what the change rule
needs (date, value signature, key), and each chunk compares against its slice. The rule is
``write_frame_changes``'s, word for word: a new row whose values (audit columns aside) no
current row has is inserted, a current row whose values no new row has is deleted, both by key.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from .. import schema
from ..warehouse import Warehouse
from ..warehouse.base import WriteCount, conform_frame, key_strings, replace_rows, value_columns

CURRENT_SQL = "predict/current_rows"


@dataclass
class CurrentRows:
    """A table's rows on some dates, reduced to what the change rule compares: per row its date
    (``day``, datetime64), the signature of its values (``sig``) and its key (``key``, as
    ``key_strings`` spells it). At full scale the predictions of a stage are ~800 k rows of 16
    columns; three lean columns are what stays in memory across the chunks."""

    table: str
    rows: pd.DataFrame  # day, sig, key; sorted by day

    @classmethod
    def of(cls, table: str, old: pd.DataFrame) -> "CurrentRows":
        """From a frame holding the table's value columns (as read from the warehouse)."""
        t = schema.table(table)
        day = pd.to_datetime(old[t.date_column]).astype("datetime64[ns]").to_numpy()
        order = np.argsort(day, kind="stable")
        # the key column stays object dtype: pandas' default string dtype would copy ~800 k keys
        # into Arrow for nothing (only ``np.isin`` and the delete's parameter read them)
        rows = pd.DataFrame({"day": day[order], "sig": signatures(t, old)[order],
                             "key": pd.Series(key_strings(t, old)[order], dtype=object)})
        return cls(t.fqn, rows)

    @classmethod
    def read(cls, wh: Warehouse, dates: list[date]) -> "CurrentRows":
        """The predictions on ``dates`` now: one query (``nbcore/sql/predict/current_rows.sql``)."""
        t = schema.table("nba_predictions.player_prop_predictions")
        old = wh.query_file(CURRENT_SQL, {"dates": sorted(set(dates))})
        return cls.of(t.fqn, old[value_columns(t)])

    def on(self, dates: list[date]) -> pd.DataFrame:
        """The rows whose date is one of ``dates``."""
        return self.rows.iloc[rows_on(self.rows["day"].to_numpy(), dates)]


def write_changes(wh: Warehouse, table: str, dates: list[date], frame: pd.DataFrame,
                  current: CurrentRows) -> WriteCount:
    """Make ``table`` on ``dates`` equal ``frame``, deleting and inserting only the rows whose value
    differs from ``current`` (what the table held on those dates before the chunk's transaction).

    Nothing is read: inside a transaction the write is queued and leaves with its ``COMMIT``
    (BigQuery). The counts and ``changed_dates`` are those ``write_frame_changes`` returns."""
    t = schema.table(table)
    dates = sorted(set(dates))
    if not dates:
        return WriteCount()
    old = current.on(dates)
    new = conform_frame(t, frame)
    new_sig = signatures(t, new)
    old_sig = old["sig"].to_numpy(dtype=np.uint64)
    changed = new[~np.isin(new_sig, old_sig)]
    gone = old[~np.isin(old_sig, new_sig)]
    return replace_rows(wh, t, dates, changed, gone["key"].to_numpy(dtype=object), gone["day"].to_numpy())


def rows_on(sorted_days: np.ndarray, dates) -> np.ndarray:
    """Positions of the rows whose day (``sorted_days``: datetime64[ns], ascending) is one of
    ``dates``, in order: a binary search per date rather than a scan of every row per chunk."""
    want = np.unique(pd.to_datetime(pd.Series(list(dates), dtype=object)).to_numpy(dtype="datetime64[ns]"))
    lo = np.searchsorted(sorted_days, want, "left")
    hi = np.searchsorted(sorted_days, want, "right")
    if not len(want):
        return np.empty(0, dtype=np.intp)
    return np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])


_MIX = np.uint64(0x9E3779B97F4A7C15)


def signatures(t: schema.Table, frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of its value columns (audit columns aside): equal values, equal
    hashes, NULLs included, whatever dtypes the frame carries (as read back from the warehouse, or
    as ``predict_frame`` builds it). The rule of ``base.row_signatures``, computed column by column
    on numpy arrays: the generic version converts every string column to pandas' string dtype
    first, which was most of a restating predict's write (profile in the commit)."""
    n = len(frame)
    out = np.zeros(n, dtype=np.uint64)
    if n == 0:
        return out
    for c in value_columns(t):
        h = pd.util.hash_array(_comparable(frame[c] if c in frame.columns else None, t.columns[c], n))
        with np.errstate(over="ignore"):
            out = (out * _MIX) ^ h
    return out


def _comparable(col: pd.Series | None, typ: str, n: int) -> np.ndarray:
    """A column in one form per BigQuery type: float64 (NULL as one NaN, -0.0 as 0.0) for numbers
    and booleans, int64 nanoseconds (NULL as NaT's) for dates and timestamps, str for strings
    (NULL as NUL, which no value holds)."""
    if typ in ("FLOAT64", "INT64", "NUMERIC", "BOOL"):
        if col is None:
            return np.full(n, np.nan)
        if col.dtype == object:
            col = pd.to_numeric(col.where(col.notna(), None), errors="coerce")
        vals = col.to_numpy(dtype="float64", na_value=np.nan) + 0.0
        vals[np.isnan(vals)] = np.nan
        return vals
    if typ in ("DATE", "TIMESTAMP"):
        if col is None:
            return np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        if not pd.api.types.is_datetime64_dtype(col.dtype):
            col = pd.to_datetime(col, errors="coerce")
        return col.to_numpy(dtype="datetime64[ns]").view(np.int64)
    if col is None:
        return np.full(n, "\x00", dtype=object)
    vals = col.to_numpy(dtype=object, na_value="\x00")
    if pd.api.types.infer_dtype(vals, skipna=False) != "string":
        vals = np.array([v if isinstance(v, str) else str(v) for v in vals], dtype=object)
    return vals
