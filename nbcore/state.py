"""One partition state: what state every table is in on every expected date, and why.

Every view of the runbook (``validate`` and its snapshots, ``runbook status``, ``why``, ``plan``,
the gate and the report) reads the state of a (table, game date) from here and computes none of
its own, so they cannot disagree. The expected dates are the schedule's completed games
(``nbcore.expected``); each (table, expected date) is in exactly one state:

=========  ===========================================================  ======================  =====================
state      meaning                                                      set by                  cleared by
=========  ===========================================================  ======================  =====================
present    rows for every expected game, computed from current inputs   a successful write      an input changing
missing    no rows, or fewer games than expected                        the schedule            a write of the date
stale      present, but an input it read changed after it was computed  lineage                 restatement
waived     not present, and a reviewed waiver covers it                 the waiver file         removing the waiver
failed     the latest attempt failed (attempts, last error)             run history             a successful attempt
blocked    not present, and an upstream is missing, failed or blocked   the states upstream     the upstream
=========  ===========================================================  ======================  =====================

Precedence, for one (table, date): a partition with rows for every game is ``failed`` when its
latest attempt failed, else ``stale`` when lineage says so, else ``present``. One without is
``waived`` when a waiver covers it (a raw table: its own source's waiver, for the whole date or
for every game it lacks; a derived table: a required source waived on that date and absent),
else ``failed`` when its latest attempt failed, else ``blocked`` when a table it needs (its declared
upstreams, optional raw sources aside, same date) is missing, failed or blocked, else ``missing``.

The warehouse is read with one statement, the same SQL on DuckDB and BigQuery
(``state/partition_reads``, ``reads_sql``): the generated ``validate/present_games`` (rows per table and
game), the latest attempts (``state/latest_attempts``), the stale partitions
(``lineage/stale_partitions``) and the player-games without a prediction (``state/upcoming_dates``),
tagged and unioned, so a state costs one round trip (a second each on BigQuery); the expected games
come from ``nbcore.expected`` and the waivers from the params' waiver file. A report's "closed" is
``missing|stale|failed|blocked -> present``; ``-> waived`` is waived, never closed (``closed``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Optional

import pandas as pd

from . import lineage, schema
from .expected import ExpectedGames, expected_games
from .params import RunParams
from .warehouse import Warehouse

STATES: tuple[str, ...] = ("present", "missing", "stale", "waived", "failed", "blocked")
#: states a run sets out to change (its targets); ``waived`` is reviewed, ``present`` is done
OPEN_STATES = frozenset({"missing", "stale", "failed", "blocked"})
#: states in which the partition has no rows for some expected game
ABSENT_STATES = frozenset({"missing", "waived", "blocked"})
COLUMNS = ["table", "phase", "season_year", "game_date", "state", "complete", "games_expected", "games_present",
           "rows", "missing_games", "cause", "attempts", "last_error"]


def closed(before: Optional[str], after: Optional[str]) -> bool:
    """Whether a partition went from open to present (what a report counts as closed)."""
    return before in OPEN_STATES and after == "present"


@dataclass
class PartitionStates:
    """The state of every (table, expected date) in scope: one row each in ``frame`` (``COLUMNS``)."""

    frame: pd.DataFrame
    expected: ExpectedGames = field(default_factory=lambda: ExpectedGames(pd.DataFrame()))
    # per derived table (dataset.table): its stale dates and the changed upstream behind each (for the plan's closure)
    stale_causes: dict[str, dict[date, lineage.Cause]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {k: i for i, k in enumerate(zip(self.frame.table.tolist(), self.frame.game_date.tolist()))}

    def state(self, table: str, day: date) -> Optional[str]:
        """The state of one partition, None when ``day`` is not an expected date of ``table``."""
        i = self._index.get((schema.table(table).name, day))
        return None if i is None else str(self.frame.state.iat[i])

    def row(self, table: str, day: date) -> Optional[dict]:
        i = self._index.get((schema.table(table).name, day))
        return None if i is None else self.frame.iloc[i].to_dict()

    def dates(self, table: str, *states: str) -> list[date]:
        """The expected dates of ``table`` in any of ``states`` (every expected date when none is given)."""
        f = self.frame[self.frame.table == schema.table(table).name]
        if states:
            f = f[f.state.isin(states)]
        return sorted(f.game_date)

    def absent(self, table: str) -> list[date]:
        """Expected dates on which ``table`` lacks rows for some game and no waiver covers it (what
        a write must fill: missing, blocked, and failed without rows)."""
        f = self.frame[(self.frame.table == schema.table(table).name) & (self.frame.state != "waived")]
        return sorted(f.game_date[~f.complete.astype(bool)])

    def as_map(self) -> dict[tuple[str, date], str]:
        """(table, date) -> state, for every partition in scope."""
        return {(r.table, r.game_date): r.state for r in self.frame.itertuples(index=False)}

    def counts(self) -> pd.DataFrame:
        """Per table and season: how many expected dates are in each state (one column per state)."""
        if self.frame.empty:
            return pd.DataFrame(columns=["table", "season_year", *STATES])
        out = self.frame.pivot_table(index=["table", "season_year"], columns="state", values="game_date",
                                     aggfunc="count", fill_value=0)
        return out.reindex(columns=list(STATES), fill_value=0).reset_index()

    def to_json(self) -> dict[str, dict[str, dict]]:
        """{table: {date: {state, cause, ...}}} for every partition that is not present."""
        out: dict[str, dict[str, dict]] = {}
        for r in self.frame[self.frame.state != "present"].itertuples(index=False):
            entry = {"state": r.state, "cause": r.cause}
            if r.state == "failed":
                entry.update(attempts=int(r.attempts), last_error=r.last_error)
            out.setdefault(r.table, {})[r.game_date.isoformat()] = entry
        return out


def partition_states(wh: Warehouse, params: RunParams, *, expected: Optional[ExpectedGames] = None,
                     waivers=None, tables: Optional[Iterable[str]] = None) -> PartitionStates:
    """The state of every selected table on every expected date of the params' scope. Read-only.

    ``expected`` and ``waivers`` may be passed when the caller already has them (validate);
    ``tables`` narrows the output (bare or ``dataset.table`` names; default: the params' tables).
    Every tracked table's state is computed either way, since ``blocked`` depends on upstreams.
    """
    exp = expected if expected is not None else expected_games(wh, params)
    games = exp.games
    if games.empty:
        return PartitionStates(pd.DataFrame(columns=COLUMNS), exp, {})
    if waivers is None:
        from .waivers import waived

        waivers = waived(params, wh, games=games)
    lo, hi = min(games.game_date), max(games.game_date)
    present, unpredicted, attempts, stale_causes = _reads(wh, params, lo, hi)
    coverage = _coverage(games, present)
    stale = {(schema.table(t).name, d): c.text(t) for t, causes in stale_causes.items() for d, c in causes.items()}
    required = set(params.required_sources)
    states: dict[tuple[str, date], str] = {}
    rows = []
    for t in _in_dependency_order():
        ups = _blocking_upstreams(t, required)
        for (day, season), cov in coverage.get(t.name, {}).items():
            n, got, nrows, lacking = cov
            complete = got == n
            short = unpredicted.get(day, 0) if t.fqn == lineage.PREDICTIONS else 0
            complete = complete and not short  # a player-game with features and no prediction is missing
            att = attempts.get((t.name, day))
            failed = att is not None and not att[0]
            state, cause = "present", ""
            waiver = None if complete else _waiver_for(t, day, lacking, waivers, required, states)
            if waiver is not None:
                state, cause = "waived", waiver
            elif failed:
                state, cause = "failed", f"latest attempt failed: {att[1]}"
            elif complete and (t.name, day) in stale:
                state, cause = "stale", stale[(t.name, day)]
            elif not complete:
                bad = [u for u in ups if states.get((u, day)) in ("missing", "failed", "blocked")]
                if bad:
                    state, cause = "blocked", "upstream " + ", ".join(f"{u} is {states[(u, day)]}" for u in bad)
                else:
                    state = "missing"
                games = f"{got}/{n} games have rows" + (f", {short} player-game(s) with features have no prediction"
                                                          if short else "")
                cause = games if state == "missing" else f"{cause} ({games})"
            states[(t.name, day)] = state
            rows.append({"table": t.name, "phase": t.phase, "season_year": season, "game_date": day, "state": state,
                         "complete": complete, "games_expected": n, "games_present": got, "rows": nrows,
                         "missing_games": ", ".join(lacking) if got else "", "cause": cause,
                         "attempts": att[2] if att else 0, "last_error": att[1] if failed else None})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    wanted = {schema.table(x).name for x in tables} if tables is not None else None
    keep = frame.table.map(lambda n: (n in wanted) if wanted is not None else params.table_selected(n))
    frame = frame[keep].sort_values(["table", "game_date"]).reset_index(drop=True)
    in_scope = {(r.table, r.game_date) for r in frame[frame.state == "stale"].itertuples(index=False)}
    return PartitionStates(frame, exp, {t: {d: c for d, c in causes.items() if (schema.table(t).name, d) in in_scope}
                                        for t, causes in stale_causes.items()})


# -- the reads: one statement (state/partition_reads), or four on a warehouse without bookkeeping ---------
#: the bookkeeping tables the one-statement read needs (an old warehouse opened read-only may lack them)
BOOKKEEPING = ("nba_reference.processor_run_history", "nba_reference.partition_lineage")
_READS = "state/partition_reads"


def reads_sql() -> str:
    """The BigQuery text of the one read: each of the four reads (their own files, unchanged) as a CTE,
    then ``state/partition_reads.sql``, which tags and unions them."""
    from .sqlfiles import read_sql

    ctes = {"present_games": "validate/present_games", "attempts": "state/latest_attempts",
            "stale": "lineage/stale_partitions", "unpredicted": "state/upcoming_dates"}
    return "WITH " + ",\n".join(f"{name} AS (\n{read_sql(f)}\n)" for name, f in ctes.items()) + "\n" + read_sql(_READS)


def _reads(wh: Warehouse, params: RunParams, lo: date, hi: date):
    """(rows per table and game, unpredicted player-games per date, latest attempts, stale causes):
    one statement on either engine. A warehouse without the bookkeeping tables (made before they
    existed, opened read-only so they cannot be created) is read with the four queries instead,
    each skipping what is absent."""
    from .warehouse import WarehouseError

    derived = [t.fqn for t in schema.tracked_tables() if t.phase != "2"]
    p = {"start_date": lo, "end_date": hi, "processors": [t.name for t in schema.tracked_tables()],
         "tables": derived, "seasons": params.season_list,
         "with_unpredicted": params.table_selected("player_prop_predictions")}
    try:
        f = wh.query(reads_sql(), p, label=_READS)
    except WarehouseError:
        if all(wh.table_exists(t) for t in BOOKKEEPING):
            raise  # a real failure, not an old warehouse
        present = wh.query_file("validate/present_games", {"start_date": lo, "end_date": hi})
        return present, _unpredicted(wh, lo, hi, params), _latest_attempts(wh, lo, hi), _stale_causes(wh, lo, hi)
    part = f.part
    present = f[part == "present"].rename(columns={"n": "row_count"})[["table_name", "game_date", "game_id", "row_count"]]
    # columns as Python lists, then zip: row tuples of pandas' arrow-backed columns cost more than the read
    u = f[part == "unpredicted"]
    unpredicted = {d: int(n) for d, n in zip(_days(u.game_date), u.n.tolist())}
    a = f[part == "attempt"]
    attempts = {(t, d): (bool(ok), str(detail or "unknown error"), int(n))
                for t, d, ok, detail, n in zip(a.table_name.tolist(), _days(a.game_date), a.ok.tolist(),
                                               a.detail.tolist(), a.n.tolist())}
    stale = f[part == "stale"].rename(columns={
        "game_date": "data_date", "detail": "upstream_table", "first_date": "upstream_first_date",
        "last_date": "upstream_last_date", "n": "upstream_dates", "changed_at": "upstream_changed_at"})
    for c in ("data_date", "upstream_first_date", "upstream_last_date"):
        stale[c] = pd.to_datetime(stale[c]).dt.date
    return present, unpredicted, attempts, lineage.stale_seeds(stale)


def _days(column: pd.Series) -> list[date]:
    """A column of dates or timestamps as ``datetime.date`` values (what ``pd.Timestamp(v).date()`` gives)."""
    return pd.to_datetime(column).dt.date.tolist()


def _blocking_upstreams(t: schema.Table, required: set[str]) -> list[str]:
    """The tables whose absence blocks ``t`` on a date: its declared upstreams (``schema``), the
    schedule and optional raw sources left out (a table is built without an optional source)."""
    out = []
    for u in t.upstream if t.phase != "2" else ():
        up = schema.table(u)
        if up.name == "nbac_schedule" or (up.phase == "2" and up.name not in required):
            continue
        out.append(up.name)
    return out


def _in_dependency_order() -> list[schema.Table]:
    """Every tracked table after the tables it needs (its declared upstreams), so ``blocked`` can
    look upstream: raw first, then phase by phase, each table once its upstreams are placed."""
    pending = sorted(schema.tracked_tables(), key=lambda t: schema.PHASES.index(t.phase))
    placed: list[schema.Table] = []
    names = {t.name for t in pending}
    while pending:
        ready = next(t for t in pending if all(schema.table(u).name not in names or
                                               schema.table(u).name in {p.name for p in placed} for u in t.upstream))
        placed.append(ready)
        pending.remove(ready)
    return placed


def _coverage(games: pd.DataFrame, present: pd.DataFrame) -> dict[str, dict[tuple[date, int], tuple]]:
    """table -> (date, season) -> (games expected, games with rows, rows, the game ids without rows)."""
    names = [t.name for t in schema.tracked_tables()]
    g = games.assign(game_date=pd.to_datetime(games.game_date).dt.date, game_id=games.game_id.astype(str))
    counts = present.assign(game_id=present.game_id.astype(str)).groupby(
        ["table_name", "game_id"], as_index=False).row_count.sum()
    grid = g[["game_id", "game_date", "season_year"]].merge(pd.DataFrame({"table_name": names}), how="cross")
    grid = grid.merge(counts, on=["table_name", "game_id"], how="left")
    grid["rows"] = grid.row_count.fillna(0).astype(int)
    grid["has"] = grid.rows > 0
    keys = ["table_name", "game_date", "season_year"]
    agg = grid.groupby(keys, sort=True).agg(n=("has", "size"), got=("has", "sum"), rows=("rows", "sum")).reset_index()
    lacking: dict[tuple, list[str]] = {}
    partly = agg[(agg.got > 0) & (agg.got < agg.n)][keys]
    if len(partly):  # the games without rows, only where some of the date's games have rows
        short = grid[~grid.has].merge(partly, on=keys)
        lacking = {k: sorted(ids) for k, ids in short.groupby(keys).game_id}
    out: dict[str, dict] = {}
    for table, day, season, n, got, rows in zip(*(agg[c].tolist() for c in keys + ["n", "got", "rows"])):
        out.setdefault(table, {})[(day, int(season))] = (int(n), int(got), int(rows),
                                                          lacking.get((table, day, season), []))
    return out


def _unpredicted(wh: Warehouse, lo: date, hi: date, params: RunParams) -> dict[date, int]:
    """Per game date, the player-games with a feature row and no prediction at all (a predictions
    partition can have rows for every game and still lack some players)."""
    if not params.table_selected("player_prop_predictions"):
        return {}
    f = wh.query_file("state/upcoming_dates", {"start_date": lo, "end_date": hi, "seasons": params.season_list})
    return {pd.Timestamp(r.game_date).date(): int(r.player_games_missing)
            for r in f.itertuples(index=False) if r.player_games_missing}


def _latest_attempts(wh: Warehouse, lo: date, hi: date) -> dict[tuple[str, date], tuple[bool, str, int]]:
    """(table, date) -> (latest attempt succeeded, its error, attempts recorded)."""
    if not wh.table_exists("nba_reference.processor_run_history"):
        return {}
    f = wh.query_file("state/latest_attempts", {"processors": [t.name for t in schema.tracked_tables()],
                                                "start_date": lo, "end_date": hi})
    return {(r.processor, pd.Timestamp(r.data_date).date()): (bool(r.success), str(r.error or "unknown error"),
                                                              int(r.attempts))
            for r in f.itertuples(index=False)}


def _stale_causes(wh: Warehouse, lo: date, hi: date) -> dict[str, dict[date, lineage.Cause]]:
    """Per derived table, its stale dates with the latest changed upstream behind each (recorded lineage)."""
    derived = [t.fqn for t in schema.tracked_tables() if t.phase != "2"]
    return lineage.stale_seeds(lineage.stale_partitions(wh, derived, lo, hi))


def _waiver_for(t: schema.Table, day: date, lacking: list[str], index, required: set[str],
                states: dict[tuple[str, date], str]) -> Optional[str]:
    """The waiver text that makes an absent partition ``waived``, or None.

    A raw table: its own source's waiver for the date, or for every game it lacks. A derived
    table: a required source whose partition that date is itself waived (data that is there is
    always derived; an optional source's waiver never excuses a derived table)."""
    if t.phase == "2":
        w = index.for_date(t.name, day)
        if w is None and lacking and all(index.for_game(t.name, g, day) is not None for g in lacking):
            w = index.for_game(t.name, lacking[0], day)
        return None if w is None else f"{t.name}: {w.reason} (approved by {w.approved_by})"
    for source in sorted(required):
        w = index.for_date(source, day)
        if w is not None and states.get((source, day)) == "waived":
            return f"{source}: {w.reason} (approved by {w.approved_by})"
    return None
