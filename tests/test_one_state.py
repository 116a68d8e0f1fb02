"""One partition state: every view gives the same state for every table x date (issue 20).

A seeded generator builds small warehouses with random holes (whole dates and single games),
waivers, failed attempts, stale partitions and never-graded seasons, and for each one checks
that ``status --json`` (validate's snapshot), ``plan --json``, the gate, the report's reading of
a snapshot and ``why --json`` give one state per (table, expected date), and that this state is
the one the spec (DESIGN.md's state table) gives for what the scenario did. The spec is written
here a second time, over the scenario's own bookkeeping, never over the warehouse.

Of the 200 seeded scenarios, the fewest that together reach every situation the 200 reach
(``situations``, ``covering_seeds``) are checked, about a quarter of them: the same state space.
One scenario reaching every state is a unit test; the others run in the full suite (``slow``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from nbcore import lineage, report, schema
from nbcore.gate import run_gate
from nbcore.history import RunRecord, record_runs
from nbcore.plan import plan_run
from nbcore.validate import run_validate
from nbcore.why import why
from nbcore.warehouse.duckdb import DuckDBWarehouse
from predict_fixtures import open_fresh, put, tiny_params

SCENARIOS = 200
SEASONS = {2023: [date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 13)],
           2024: [date(2024, 11, 5), date(2024, 11, 6)]}
REQUIRED = ("bdl_player_boxscores", "nbac_gamebook_player_stats")
TABLES = [t.name for t in schema.tracked_tables()]
T0 = datetime(2026, 1, 1)  # when the scenario's partitions were computed


@dataclass
class Scenario:
    """What one scenario did, in its own words: the spec's inputs."""

    games: dict[date, list[str]]
    season_of: dict[date, int]
    rows: dict[str, set[str]] = field(default_factory=dict)  # table -> game ids with rows
    waived: dict[tuple[str, date], str] = field(default_factory=dict)  # (raw source, date) -> reason
    failed: set[tuple[str, date]] = field(default_factory=set)
    stale: set[tuple[str, date]] = field(default_factory=set)
    stale_because: dict[tuple[str, date], str] = field(default_factory=dict)  # (table, date) -> the input that changed
    ungraded: int | None = None  # the season prediction_accuracy never graded

    def complete(self, table: str, day: date) -> bool:
        return set(self.games[day]) <= self.rows[table]

    def state(self, table: str, day: date, memo: dict) -> str:
        """DESIGN.md's state table, applied to what the scenario did."""
        if (table, day) in memo:
            return memo[(table, day)]
        t = schema.table(table)
        complete = self.complete(table, day)
        if t.phase == "2":
            waived = not complete and (table, day) in self.waived
        else:
            waived = not complete and any((r, day) in self.waived and not self.complete(r, day) for r in REQUIRED)
        if waived:
            out = "waived"
        elif (table, day) in self.failed:
            out = "failed"
        elif complete:
            out = "stale" if (table, day) in self.stale else "present"
        else:
            ups = [schema.table(u).name for u in t.upstream]
            ups = [u for u in ups if u != "nbac_schedule" and (schema.table(u).phase != "2" or u in REQUIRED)]
            out = "blocked" if any(self.state(u, day, memo) in ("missing", "failed", "blocked") for u in ups) \
                else "missing"
        memo[(table, day)] = out
        return out


def _row(table: str, gid: str, day: date, season: int, n: int) -> dict:
    t = schema.table(table)
    row = {c: v for c, v in (("game_id", gid), (t.date_column, day), ("season_year", season),
                             ("game_type", "regular")) if c in t.columns}
    for k in t.key:
        if k not in row:
            row[k] = {"team_abbr": ("AAA", "BBB")[n % 2], "system_id": "moving_average", "bookmaker": "b1"}.get(k, f"p{n}")
    return row


# one layout for every scenario (two games on some dates, one on others), built once per process
GAMES = {d: [f"G{s}{i}{g}" for g in range(2 if i % 2 == 0 else 1)] for s, ds in SEASONS.items() for i, d in enumerate(ds)}
SEASON_OF = {d: s for s, ds in SEASONS.items() for d in ds}
_BASE: dict[str, object] = {}


def _base(root) -> object:
    """A warehouse file with every tracked table complete (copied for each scenario)."""
    if "path" not in _BASE:
        params = tiny_params(root, seasons=sorted(SEASONS))
        wh = open_fresh(params)
        put(wh, "nbac_schedule", [{"game_id": g, "game_date": d, "season_year": SEASON_OF[d], "game_type": "regular",
                                   "game_status": "final", "home_team": "AAA", "away_team": "BBB"}
                                  for d, gs in GAMES.items() for g in gs])
        for table in TABLES:
            put(wh, table, [_row(table, g, d, SEASON_OF[d], n) for d, gs in GAMES.items() for g in gs for n in range(2)])
        wh.close()
        _BASE["path"] = params.duckdb_path
    return _BASE["path"]


def plan(seed: int) -> Scenario:
    """What scenario ``seed`` does (its random holes, waivers, stale and failed partitions), decided
    without a warehouse: the same random draws, in the same order, as ``build`` applies them."""
    rnd = random.Random(seed)
    games = GAMES
    sc = Scenario(games=games, season_of=SEASON_OF)
    # holes: a table loses a whole date, or one game of a two-game date; one season is never graded
    holes = {(rnd.choice(TABLES), rnd.choice(list(games))) for _ in range(rnd.randint(0, 5))}
    partial = {(rnd.choice(TABLES), d) for d in games if len(games[d]) == 2 and rnd.random() < 0.2}
    sc.ungraded = rnd.choice([None, None, 2023, 2024])
    for table in TABLES:
        dropped = set()
        for d, gs in games.items():
            drop = set(gs) if (table, d) in holes else ({gs[0]} if (table, d) in partial else set())
            if table == "prediction_accuracy" and sc.season_of[d] == sc.ungraded:
                drop = set(gs)
            dropped |= drop
        sc.rows[table] = {g for gs in games.values() for g in gs} - dropped
    # waivers: some absent raw dates, and now and then a present one (which changes nothing)
    raw_dates = [(t, d) for t in TABLES if schema.table(t).phase == "2" for d in games]
    for t, d in rnd.sample(raw_dates, rnd.randint(0, 3)):
        sc.waived[(t, d)] = f"The feed had an outage (scenario {seed})."
    # stale: a derived partition computed at T0 whose input changed at T1 (one per date, no cross-talk)
    for d in rnd.sample(list(games), rnd.randint(0, 2)):
        table = rnd.choice([t for t in TABLES if schema.table(t).phase != "2"])
        sc.stale_because[(table, d)] = rnd.choice(lineage.upstreams(schema.table(table).fqn))
        sc.stale.add((table, d))
    # failed attempts: the latest attempt of a partition failed (with or without rows left)
    sc.failed = {(rnd.choice(TABLES), rnd.choice(list(games))) for _ in range(rnd.randint(0, 2))}
    return sc


def build(seed: int, root) -> tuple[Scenario, object, object]:
    """Scenario ``seed`` written into a copy of the complete warehouse: its holes deleted, its stale
    partitions' lineage, its failed attempts in the run history, its waivers in a file."""
    import shutil

    sc = plan(seed)
    base = _base(root.parent)
    params = tiny_params(root, seasons=sorted(SEASONS))
    shutil.copy(base, params.duckdb_path)
    (root / "bucket").mkdir(exist_ok=True)
    wh = DuckDBWarehouse(str(params.duckdb_path))
    every = {g for gs in sc.games.values() for g in gs}
    for table in TABLES:
        dropped = every - sc.rows[table]
        if dropped:
            wh.execute(f"DELETE FROM {schema.table(table).fqn} WHERE game_id IN UNNEST(@g)", {"g": sorted(dropped)})
    later = T0 + timedelta(hours=1)
    same_day = lambda _t, day: (day, day)  # noqa: E731
    for (table, d), up in sc.stale_because.items():
        lineage.record_lineage(wh, [lineage.PartitionWrite(table, d, True)], same_day, run_id="base", stage="x", stamp=T0)
        if schema.table(up).phase == "2":
            record_runs(wh, [RunRecord(run_id="fix", stage="load", phase="2", processor=schema.table(up).name,
                                       data_date=d, success=True, started_at=later, finished_at=later)])
        else:
            lineage.record_lineage(wh, [lineage.PartitionWrite(up, d, True)], same_day, run_id="fix", stage="x",
                                   stamp=later)
    last = T0 + timedelta(hours=2)
    for t, d in sc.failed:
        t_ = schema.table(t)
        record_runs(wh, [RunRecord(run_id="bad", stage="load" if t_.phase == "2" else "derive", phase=t_.phase,
                                   processor=t, data_date=d, success=False, error="boom", started_at=last,
                                   finished_at=last)])
    if sc.waived:
        waivers = root / "waivers.yaml"
        waivers.write_text("waivers:\n" + "".join(
            f"  - source: {t}\n    dates: [{d}]\n    reason: {r}\n    approved_by: ops\n" for (t, d), r in sc.waived.items()))
        params = params.model_copy(update={"waivers": waivers})
    return sc, params, wh


def situations(sc: Scenario) -> set[tuple]:
    """Every situation a scenario puts a partition in, as the spec sees it. Per table: its state and
    how many of its date's games have rows (none, some, all). Per kind of table (its phase, whether
    it is a required raw source, whether it is the graded table): the state, the date's number of
    games, the rows, whether a waiver, a failed attempt or a changed input names the partition, and
    the states of its upstreams when it is not complete (what makes it blocked rather than missing,
    or waived). And the never-graded season. Two scenarios with the same situations test the views
    the same way."""
    memo: dict = {}
    out: set[tuple] = {("ungraded", sc.ungraded)}
    for t in TABLES:
        tb = schema.table(t)
        kind = (tb.phase, t in REQUIRED, t == "prediction_accuracy")
        for d, gs in sc.games.items():
            have = len(set(gs) & sc.rows[t])
            rows = "none" if have == 0 else "some" if have < len(gs) else "all"
            state = sc.state(t, d, memo)
            ups = () if sc.complete(t, d) else tuple(sorted({sc.state(schema.table(u).name, d, memo)
                                                             for u in tb.upstream if schema.table(u).name in TABLES}))
            out.add(("table", t, state, rows))
            out.add(("kind", kind, len(gs), state, rows, (t, d) in sc.waived, (t, d) in sc.failed, (t, d) in sc.stale,
                     ups))
    return out


def covering_seeds(seeds, reached=situations) -> list[int]:
    """Few seeds (greedy set cover, most new situations first) whose situations together are every
    situation that ``seeds`` reach: the same state space, in a fraction of the scenarios."""
    todo = {s: reached(plan(s)) for s in seeds}
    left = set().union(*todo.values())
    chosen: list[int] = []
    while left:
        best = max(todo, key=lambda s: (len(todo[s] & left), -s))
        chosen.append(best)
        left -= todo.pop(best)
    return chosen


def _expand(non_present: dict[str, dict[str, str]], sc: Scenario) -> dict[tuple[str, date], str]:
    """{table: {date: state}} of the partitions not present -> every (table, expected date)'s state."""
    out = {(t, d): "present" for t in TABLES for d in sc.games}
    for t, m in non_present.items():
        for d, st in m.items():
            out[(t, date.fromisoformat(str(d)[:10]))] = st["state"] if isinstance(st, dict) else st
    return out


# The SCENARIOS seeded scenarios put partitions in a set of situations (``situations``); the fewest
# of them that reach every one of those situations are checked: the same state space as checking all
# of them (which took ~1.5 s a scenario), in a fraction of the scenarios. A few of them that reach every
# state (FAST_SEEDS) are unit tests; the others run in the full suite (``slow``).
SEEDS = covering_seeds(range(SCENARIOS))


def states_reached(sc: Scenario) -> set[str]:
    return {x[2] for x in situations(sc) if x[0] == "table"}


FAST_SEEDS = covering_seeds(SEEDS, states_reached)  # every state, in a few scenarios


def check_every_view(seed: int, tmp_path) -> None:
    root = tmp_path / f"s{seed}"
    root.mkdir()
    sc, params, wh = build(seed, root)
    try:
        memo: dict = {}
        spec = {(t, d): sc.state(t, d, memo) for t in TABLES for d in sc.games}
        status = run_validate(params, wh, progress=False).to_status_json()
        per_table: dict[str, dict] = {}
        for entry in status["tables"]:  # one entry per table and season
            per_table.setdefault(entry["table"], {}).update(entry["states"])
        from_status = _expand(per_table, sc)
        assert from_status == spec, (seed, {k: (v, spec[k]) for k, v in from_status.items() if v != spec[k]})
        # the report reads the snapshot: its before/after tables give the same states
        read = {(tbl, d): st for (_, tbl, _), m in report._state_sets(status).items() for d, st in m.items()}
        assert _expand({t: {d: st for (tt, d), st in read.items() if tt == t} for t in TABLES}, sc) == spec, seed
        plan_json = plan_run(params, wh).to_json()
        assert _expand(plan_json["states"], sc) == spec, seed
        gate = run_gate(params, wh, raise_on_block=False)
        raw = {(t, d): st for (t, d), st in spec.items() if schema.table(t).phase == "2"}
        assert {k: v for k, v in _expand(gate.states, sc).items() if k in raw} == raw, seed
        # why, on a few cells (all that are not present, when there are few)
        rnd = random.Random(seed)
        odd = [k for k, v in spec.items() if v != "present"]
        for t, d in rnd.sample(odd, min(2, len(odd))) + [rnd.choice(list(spec))]:
            assert why(params, t, d, wh).to_json()["state"] == spec[(t, d)], (seed, t, d)
    finally:
        wh.close()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_every_view_gives_the_one_state(seed, tmp_path):
    check_every_view(seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [s for s in SEEDS if s not in FAST_SEEDS])
def test_every_view_gives_the_one_state_in_every_situation(seed, tmp_path):
    check_every_view(seed, tmp_path)


def test_every_state_occurs_in_the_scenarios_and_the_seeds_checked_reach_every_situation():
    """The generator reaches every state (so the test above is not vacuous for any of them), the
    unit tests' seeds alone reach every state, and the seeds checked reach every situation that
    all SCENARIOS reach."""
    states = {"present", "missing", "stale", "waived", "failed", "blocked"}
    every = set().union(*(situations(plan(s)) for s in range(SCENARIOS)))
    assert set().union(*(situations(plan(s)) for s in SEEDS)) == every
    assert {x[2] for x in every if x[0] == "table"} == states
    assert set().union(*(states_reached(plan(s)) for s in FAST_SEEDS)) == states
    assert len(SEEDS) < SCENARIOS / 2, len(SEEDS)  # a cover, not the whole sweep again


def test_plan_draws_what_build_writes(tmp_path):
    """``plan`` (no warehouse) and ``build`` agree: the rows left per table are the rows written."""
    seed = SEEDS[0]
    sc, _, wh = build(seed, tmp_path)
    try:
        for t in TABLES:
            got = set(wh.query(f"SELECT DISTINCT game_id FROM {schema.table(t).fqn}").game_id)
            assert got == sc.rows[t], t
    finally:
        wh.close()


def test_status_check_exits_5_while_anything_is_open(tmp_path):
    """``runbook status --check``: 5 when some date is missing, stale, failed or blocked; 0 when every
    date is present (a scheduled job can gate on it)."""
    import shutil

    import yaml
    from click.testing import CliRunner

    from nbcore.cli import main

    def check(params, root) -> int:
        params_file = root / "params.yaml"
        params_file.write_text(yaml.safe_dump(params.public_dict()))
        return CliRunner().invoke(main, ["status", "--params", str(params_file), "--check"]).exit_code

    holes = tmp_path / "holes"
    holes.mkdir()
    sc, params, wh = build(1, holes)
    wh.close()
    memo: dict = {}
    assert any(sc.state(t, d, memo) in ("missing", "stale", "failed", "blocked") for t in TABLES for d in sc.games)
    assert check(params, holes) == 5
    whole = tmp_path / "whole"
    whole.mkdir()
    (whole / "bucket").mkdir()
    params = tiny_params(whole, seasons=sorted(SEASONS))
    shutil.copy(_base(tmp_path), params.duckdb_path)  # every table complete on every date
    assert check(params, whole) == 0
    assert CliRunner().invoke(main, ["--version"]).output.startswith("runbook, version ")
