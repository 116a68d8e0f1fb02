"""Lineage and staleness: what each written partition read, and which partitions are stale.

A backfill converges only if every derived partition equals what a hole-free pipeline would
compute from today's inputs. Presence is not enough: a partition computed before one of its
inputs changed (a filled date inside its lookback window, a higher-priority source arriving, a
model retrained on more data) is **stale**.

Every write of a partition (table, date) records, per upstream table it read, the date window it
read (``read_from``..``read_to``) and two stamps: ``computed_at`` (when it was computed) and
``changed_at`` (when its rows last actually changed: a restatement that comes out identical
keeps the earlier ``changed_at``, so nothing downstream of it goes stale). Raw partitions are
versioned by their latest successful load in ``processor_run_history``.

A partition is stale when an upstream partition inside its window changed after it was
computed: one query over ``nba_reference.partition_lineage`` (``lineage/stale_partitions.sql``),
the same on DuckDB and BigQuery. Before a run, ``closure`` follows the graph forward: a date
that will be rebuilt upstream makes every downstream partition whose window holds it a target,
so one run restates exactly the closure, in dependency order.

The upstream tables of a written table are read off its SQL files (sqlglot), not declared by
hand, so a SQL edit cannot silently leave an input out. Windows come from the schema's
``lookback`` (days: ``[D - N, D]``; games: the season so far, since every last-N-games and
season-to-date window in the SQL is per season) or, for predictions, from the walk-forward
model's training window.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Callable, Iterable, Mapping, Optional

import pandas as pd

from . import profiling, schema
from .sqlfiles import read_sql
from .warehouse import Warehouse

TABLE = "nba_reference.partition_lineage"
# A version stamp older than anything the runbook writes: "unchanged since before lineage".
EPOCH = datetime(1970, 1, 1)
# The schedule is the reference every date is counted against, not an input whose change restates.
REFERENCE_TABLES = frozenset({"nba_raw.nbac_schedule"})

PREDICTIONS = "nba_predictions.player_prop_predictions"
ACCURACY = "nba_predictions.prediction_accuracy"
# The SQL files whose reads make up each written table (derive tables: their own file).
_SQL_FILES: dict[str, tuple[str, ...]] = {
    PREDICTIONS: ("predict/targets", "predict/training_rows", "predict/moving_average", "predict/matchup_adjusted"),
    ACCURACY: ("grade/accuracy",),
}


def stage_of(table: str) -> str:
    """The stage that writes a table (the registry's phase map)."""
    from .stages import stage_for_table

    return stage_for_table(table)


def sql_files(table: str) -> tuple[str, ...]:
    t = schema.table(table)
    return _SQL_FILES.get(t.fqn, (f"derive/{t.name}",))


@lru_cache(maxsize=None)
def upstreams(table: str) -> tuple[str, ...]:
    """The tables (``dataset.table``) a table's SQL reads, itself and the schedule left out.

    Read off the SQL text: every ``dataset.table`` of a pipeline dataset outside comments and
    string literals (a plan and every stage kernel asks; parsing the files with sqlglot each time
    cost most of a second). ``tables_read`` is the sqlglot reading; a test keeps them equal."""
    t = schema.table(table)
    refs: set[str] = set()
    for name in sql_files(t.fqn):
        text = _COMMENTS_AND_STRINGS.sub(" ", read_sql(name))
        refs.update(f"{db}.{tbl}" for db, tbl in _TABLE_REF.findall(text) if db in schema.DATASET_ORDER)
    return tuple(sorted(refs - {t.fqn} - REFERENCE_TABLES))


_COMMENTS_AND_STRINGS = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.S)
_TABLE_REF = re.compile(r"(?<![\w.`])`?([A-Za-z_]\w*)`?\.`?([A-Za-z_]\w*)`?(?![\w.(])")


def tables_read(table: str) -> tuple[str, ...]:
    """``upstreams`` by parsing the SQL with sqlglot (the slow, certain reading; tests compare)."""
    import sqlglot  # here, not at the top: the read-only commands import this module and never parse
    from sqlglot import exp

    t = schema.table(table)
    refs: set[str] = set()
    for name in sql_files(t.fqn):
        for statement in sqlglot.parse(read_sql(name), read="bigquery"):
            if statement is None:
                continue
            for node in statement.find_all(exp.Table):
                if node.db in schema.DATASET_ORDER:
                    refs.add(f"{node.db}.{node.name}")
    return tuple(sorted(refs - {t.fqn} - REFERENCE_TABLES))


# Tables lineage follows, in dependency order (a table's upstreams come before it).
def ordered_tables() -> list[str]:
    derived = [t.fqn for t in schema.all_tables() if t.phase in ("3", "4", "5", "5B")]
    order: list[str] = []
    pending = list(derived)
    while pending:
        for name in pending:
            if all(u in order or u not in derived for u in upstreams(name)):
                order.append(name)
                pending.remove(name)
                break
        else:  # pragma: no cover - the SQL would have to read its own downstream
            raise ValueError(f"lineage cycle among {pending}")
    return order


WindowFn = Callable[[str, date], tuple[date, date]]


@dataclass(frozen=True)
class Windows:
    """How far back each partition reads: the rule behind ``read_from``/``read_to``.

    ``season_start`` maps a game date to the first game date of its season; ``model_window``
    gives a prediction date's training window start (the walk-forward model's), when known.
    """

    season_start: Mapping[date, date]
    model_window: Optional[Callable[[date], date]] = None

    def __call__(self, table: str, day: date) -> tuple[date, date]:
        t = schema.table(table)
        if t.fqn == PREDICTIONS and self.model_window is not None:
            return min(self.model_window(day), self.season_start.get(day, day)), day
        if t.window_days:
            return day - timedelta(days=t.window_days), day
        if t.window_games:
            # last-N-games and season-to-date windows are per season in the SQL; a player with
            # fewer than N games reaches back to the season's first game
            return self.season_start.get(day, day), day
        return day, day

    @classmethod
    def from_dates(cls, season_of: Mapping[date, int], model_window=None) -> "Windows":
        first: dict[int, date] = {}
        for d, s in season_of.items():
            if s not in first or d < first[s]:
                first[s] = d
        return cls({d: first[s] for d, s in season_of.items()}, model_window)


@dataclass(frozen=True)
class PartitionWrite:
    """One partition written by a stage: its table, its date, and whether its rows changed."""

    table: str
    data_date: date
    changed: bool


def now() -> datetime:
    """The write stamp: naive UTC, as every TIMESTAMP the runbook stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def record_lineage(wh: Warehouse, writes: list[PartitionWrite], windows: WindowFn, *, run_id: str, stage: str,
                   stamp: Optional[datetime] = None) -> int:
    """Append one lineage row per upstream of every written partition (call inside the write's
    transaction). ``changed_at`` moves to ``stamp`` only for partitions whose rows changed."""
    if not writes:
        return 0
    with profiling.part("lineage"):
        return _record_lineage(wh, writes, windows, run_id=run_id, stage=stage, stamp=stamp or now())


def _record_lineage(wh: Warehouse, writes: list[PartitionWrite], windows: WindowFn, *, run_id: str, stage: str,
                    stamp: datetime) -> int:
    unchanged = [w for w in writes if not w.changed]  # only these carry a previous changed_at forward
    before = wh.query_file("lineage/latest_versions", {
        "tables": sorted({schema.table(w.table).fqn for w in unchanged}),
        "dates": sorted({w.data_date for w in unchanged})}) if unchanged else pd.DataFrame()
    previous = {(r.table_name, pd.Timestamp(r.data_date).date()): pd.Timestamp(r.changed_at).to_pydatetime()
                for r in before.itertuples()}
    rows = []
    for w in writes:
        fqn = schema.table(w.table).fqn
        changed_at = stamp if w.changed else previous.get((fqn, w.data_date), EPOCH)
        lo, hi = windows(fqn, w.data_date)
        for up in upstreams(fqn):
            rows.append({"table_name": fqn, "data_date": w.data_date, "upstream_table": up, "read_from": lo,
                         "read_to": hi, "run_id": run_id, "stage": stage, "computed_at": stamp,
                         "changed_at": changed_at})
    return wh.append(TABLE, pd.DataFrame(rows))


def stale_partitions(wh: Warehouse, tables: Optional[Iterable[str]] = None, start: Optional[date] = None,
                     end: Optional[date] = None) -> pd.DataFrame:
    """Stale partitions now: one row per (table, date, changed upstream) with the upstream's
    changed dates (first, last, how many) and when it changed. Read-only."""
    names = [schema.table(t).fqn for t in (tables or ordered_tables())]
    if not wh.table_exists(TABLE):  # a warehouse no lineage-aware run has written yet (opened read-only)
        return pd.DataFrame(columns=["table_name", "data_date", "upstream_table", "upstream_first_date",
                                     "upstream_last_date", "upstream_dates", "upstream_changed_at", "computed_at"])
    frame = wh.query_file("lineage/stale_partitions", {
        "tables": names, "start_date": start or date(1900, 1, 1), "end_date": end or date(2999, 12, 31)})
    for c in ("data_date", "upstream_first_date", "upstream_last_date"):
        frame[c] = pd.to_datetime(frame[c]).dt.date
    return frame


@dataclass(frozen=True)
class Cause:
    """Why a date is a target: missing, or stale because an upstream changed (or will be rebuilt)."""

    kind: str  # missing | stale
    upstream: str = ""
    upstream_date: Optional[date] = None
    pending: bool = False  # the upstream is rebuilt by this run (not changed yet)

    def text(self, table: str) -> str:
        if self.kind != "stale":
            return self.kind
        raw = self.upstream.startswith("nba_raw.")
        what = ("is loaded" if raw else "is rebuilt") + " by this run" if self.pending else "changed"
        where = window_text(table)
        where = "on the same date" if where == "own date" else f"inside its {where}"
        return f"stale: {self.upstream.split('.')[-1]} {what} on {self.upstream_date}, {where}"


def window_text(table: str) -> str:
    t = schema.table(table)
    if t.fqn == PREDICTIONS:
        return "model's training window"
    if t.window_days:
        return f"{t.window_days}-day window"
    if t.window_games:
        return f"{t.window_games}-game / season-to-date window"
    return "own date"


@dataclass
class Targets:
    """Per table, the dates a run rebuilds and the cause of each (the plan's core)."""

    dates: dict[str, dict[date, Cause]] = field(default_factory=dict)
    season_of: dict[date, int] = field(default_factory=dict)  # game date -> season: chunks never span two

    def of(self, table: str) -> dict[date, Cause]:
        return self.dates.get(schema.table(table).fqn, {})

    def missing(self, table: str) -> list[date]:
        return sorted(d for d, c in self.of(table).items() if c.kind == "missing")

    def stale(self, table: str) -> list[date]:
        return sorted(d for d, c in self.of(table).items() if c.kind == "stale")

    def all(self, table: str) -> list[date]:
        return sorted(self.of(table))


def closure(seeds: Mapping[str, Mapping[date, Cause]], candidates: Mapping[str, Iterable[date]],
            windows: WindowFn, tables: Optional[list[str]] = None,
            frozen: Iterable[str] = ()) -> Targets:
    """Follow the graph forward from the seeds: a partition of table T on date D becomes a
    target when an upstream target date lies inside D's window (in dependency order, so one run
    restates the whole closure). ``seeds``: the missing and stale partitions found now (raw
    dates load will fill count as upstream seeds). ``candidates``: per table, the dates that
    exist or are expected (only those can become targets). Tables in ``frozen`` keep their
    present partitions (``freeze_predictions``): their own seeds stay, nothing is added."""
    out = Targets({k: dict(v) for k, v in seeds.items()})
    frozen = {schema.table(t).fqn for t in frozen}
    for table in tables or ordered_tables():
        if table in frozen:
            continue
        mine = out.dates.setdefault(table, {})
        ups = [(u, sorted(out.dates.get(u, {}))) for u in upstreams(table)]
        ups = [(u, ds) for u, ds in ups if ds]
        if not ups:
            continue
        for d in sorted(candidates.get(table, ())):
            if d in mine:
                continue
            lo, hi = windows(table, d)
            for u, ds in ups:
                i = bisect.bisect_left(ds, lo)
                if i < len(ds) and ds[i] <= hi:
                    hit = ds[bisect.bisect_right(ds, hi) - 1]  # the latest rebuilt date inside the window
                    mine[d] = Cause("stale", u, hit, pending=True)
                    break
    return out


def stale_seeds(frame: pd.DataFrame) -> dict[str, dict[date, Cause]]:
    """``stale_partitions`` rows as closure seeds: per table and date, the latest changed upstream date."""
    out: dict[str, dict[date, Cause]] = {}
    for r in frame.sort_values("upstream_last_date").itertuples():
        out.setdefault(r.table_name, {})[r.data_date] = Cause("stale", r.upstream_table, r.upstream_last_date)
    return out
