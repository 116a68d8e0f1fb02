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
from ..warehouse.base import WriteCount, conform_frame, key_strings, replace_rows, row_signatures, value_columns

CURRENT_SQL = "predict/current_rows"


@dataclass
class CurrentRows:
    """A table's rows on some dates, reduced to what the change rule compares: per row its date
    (``day``, datetime64), the signature of its values (``sig``) and its key (``key``, as
    ``key_strings`` spells it). At full scale the predictions of a stage are ~800 k rows of 16
    columns; three lean columns are what stays in memory across the chunks."""

    table: str
    rows: pd.DataFrame  # day, sig, key

    @classmethod
    def of(cls, table: str, old: pd.DataFrame) -> "CurrentRows":
        """From a frame holding the table's value columns (as read from the warehouse)."""
        t = schema.table(table)
        return cls(t.fqn, pd.DataFrame({
            "day": pd.to_datetime(old[t.date_column]).astype("datetime64[ns]").to_numpy(),
            "sig": row_signatures(t, old).to_numpy(dtype="uint64"),
            "key": np.asarray(key_strings(t, old), dtype=object),
        }))

    @classmethod
    def read(cls, wh: Warehouse, dates: list[date]) -> "CurrentRows":
        """The predictions on ``dates`` now: one query (``nbcore/sql/predict/current_rows.sql``)."""
        t = schema.table("nba_predictions.player_prop_predictions")
        old = wh.query_file(CURRENT_SQL, {"dates": sorted(set(dates))})
        return cls.of(t.fqn, old[value_columns(t)])

    def on(self, dates: list[date]) -> pd.DataFrame:
        """The rows whose date is one of ``dates``."""
        days = pd.to_datetime(pd.Series(list(dates), dtype=object)).astype("datetime64[ns]").to_numpy()
        return self.rows[np.isin(self.rows["day"].to_numpy(), days)]


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
    new_sig = row_signatures(t, new)
    changed = new[~new_sig.isin(set(old["sig"]))]
    gone = old[~old["sig"].isin(set(new_sig))]
    return replace_rows(wh, t, dates, changed, list(gone["key"]), gone["day"])
