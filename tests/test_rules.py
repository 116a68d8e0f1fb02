"""One definition of every rule: each lookback window is a number in ``nbcore/schema``, and the
derive SQL reads it as a query parameter (``@lookback_<name>``), never as a literal.

The walk is over sqlglot's parse of every ``nbcore/sql/derive/*.sql`` (not a regex): window
frame offsets and INTERVAL amounts must be parameters. The one literal allowed is 1 as the
*end* of a window ("the day / the row before D": the no-look-ahead bound, not a lookback).
"""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from nbcore import schema
from nbcore.derive.processors import PROCESSORS, processor
from nbcore.sqlfiles import SQL_DIR, read_sql
from nbcore.warehouse.duckdb import DuckDBWarehouse

DERIVE_SQL = sorted((SQL_DIR / "derive").glob("*.sql"))


def _statements(path):
    return [s for s in sqlglot.parse(path.read_text(), read="bigquery") if s is not None]


def _amount_is_the_day_before(node: exp.Expression) -> bool:
    """``DATE_SUB(x, INTERVAL 1 DAY)`` as the upper bound of a BETWEEN: "before D", not a window."""
    amount = node.args.get("expression")
    return (isinstance(amount, exp.Literal) and amount.this == "1"
            and isinstance(node.parent, exp.Between) and node.arg_key == "high")


def lookback_literals(path) -> list[str]:
    """Every window size written as a number in a SQL file, as ``where: text``."""
    found = []
    for statement in _statements(path):
        for node in statement.find_all(exp.DateSub, exp.DateAdd):
            amount = node.args.get("expression")
            if not isinstance(amount, exp.Parameter) and not _amount_is_the_day_before(node):
                found.append(f"interval: {node.sql('bigquery')}")
        for node in statement.find_all(exp.Interval):
            if not isinstance(node.this, exp.Parameter):
                found.append(f"interval: {node.sql('bigquery')}")
        for spec in statement.find_all(exp.WindowSpec):
            start, end = spec.args.get("start"), spec.args.get("end")
            if start is not None and not (isinstance(start, exp.Parameter) or start in ("UNBOUNDED", "CURRENT ROW")):
                found.append(f"frame start: {spec.sql('bigquery')}")
            end_ok = (end is None or isinstance(end, exp.Parameter) or end in ("UNBOUNDED", "CURRENT ROW")
                      or (isinstance(end, exp.Literal) and end.this == "1" and spec.args.get("end_side") == "PRECEDING"))
            if not end_ok:
                found.append(f"frame end: {spec.sql('bigquery')}")
    return found


def lookback_values_written(path, t: schema.Table) -> list[str]:
    """Numeric literals equal to one of the table's window sizes (or N - 1 for a game count),
    a ROUND's number of decimals left out: e.g. ``LEAST(games_used, 10)`` for a 10-game window."""
    sizes = set()
    for name, n in t.lookback.items():
        sizes.add(n)
        if schema.is_game_count(name):
            sizes.add(n - 1)
    found = []
    for statement in _statements(path):
        for lit in statement.find_all(exp.Literal):
            if lit.is_string or (isinstance(lit.parent, exp.Round) and lit.arg_key == "decimals"):
                continue
            if float(lit.this) in sizes:
                found.append(lit.parent.sql("bigquery"))
    return found


def used_parameters(path) -> set[str]:
    return {p.name for s in _statements(path) for p in s.find_all(exp.Parameter)}


# -- the SQL never repeats a window size ----------------------------------------------------------

@pytest.mark.parametrize("path", DERIVE_SQL, ids=lambda p: p.stem)
def test_no_window_size_is_written_in_the_derive_sql(path):
    assert lookback_literals(path) == []
    try:
        t = schema.table(path.stem)
    except KeyError:  # final_games, present_games, run_attempts: no table of their own
        return
    assert lookback_values_written(path, t) == []


def test_the_walk_finds_a_window_written_as_a_number(tmp_path):
    """The checks above would catch the literals the SQL used to have."""
    old = ("SELECT AVG(points) OVER (w ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS a,\n"
           "  LEAST(n, 10) AS games_used FROM nba_analytics.player_game_summary\n"
           "WHERE game_date BETWEEN DATE_SUB(@start_date, INTERVAL 366 DAY) AND DATE_SUB(@end_date, INTERVAL 1 DAY)\n"
           "WINDOW w AS (PARTITION BY player_lookup ORDER BY game_date)")
    path = tmp_path / "player_daily_cache.sql"
    path.write_text(old)
    found = lookback_literals(path)
    assert len(found) == 2  # the 366-day interval and the 9-row frame
    assert "INTERVAL '366' DAY" in found[0] and "9 PRECEDING" in found[1]
    assert sorted(lookback_values_written(path, schema.table("player_daily_cache"))) == [
        "LEAST(n, 10)", "ROWS BETWEEN 9 PRECEDING AND CURRENT ROW"]


# -- every schema lookback reaches its SQL, and only through the schema ----------------------------

def test_every_schema_lookback_is_read_by_its_table_sql():
    with_lookback = [p for p in PROCESSORS if p.table.lookback]
    assert {p.name for p in with_lookback} >= {"team_defense_zone_analysis", "player_shot_zone_analysis",
                                                "player_composite_factors", "player_daily_cache",
                                                "ml_feature_store_v2", "upcoming_player_game_context"}
    for p in with_lookback:
        used = used_parameters(SQL_DIR / f"{p.sql_name}.sql")
        for name in p.table.lookback:
            assert {f"lookback_{name}", f"lookback_{name}_preceding"} & used, \
                f"schema lookback {p.name}.{name} is not read by {p.sql_name}.sql"


@pytest.mark.parametrize("proc", PROCESSORS, ids=lambda p: p.name)
def test_every_lookback_parameter_the_sql_reads_comes_from_the_schema(proc):
    used = {u for u in used_parameters(SQL_DIR / f"{proc.sql_name}.sql") if u.startswith("lookback_")}
    assert used <= set(proc.sql_parameters)


def test_the_parameters_of_a_window():
    t = schema.table("player_daily_cache")
    assert t.lookback == {"games": 10, "short_games": 5, "season_days": 366}
    assert processor("player_daily_cache").sql_parameters == {
        "lookback_games": 10, "lookback_games_preceding": 9,
        "lookback_short_games": 5, "lookback_short_games_preceding": 4,
        "lookback_season_days": 366}
    assert processor("team_defense_zone_analysis").sql_parameters == {"lookback_days": 15}
    # lineage, why and the defensive checks read the upstream window, from the same mapping
    assert (t.window_games, t.window_days) == (10, 0)
    assert processor("team_defense_zone_analysis").lookback_days == schema.table("team_defense_zone_analysis").window_days == 15


@pytest.mark.parametrize("spec, message", [
    ({"days": 0}, r"lookback.days must be a whole number of days or games >= 1, got 0"),
    ({"games": "10"}, r"lookback.games must be a whole number"),
    ({"Last-5": 5}, r"'Last-5' is not a valid window name"),
    ({"days": 15, "games": 10}, r"either days or games, not both"),
    ([15], r"must be a mapping of window name -> whole number"),
])
def test_a_bad_lookback_in_the_schema_is_refused_by_name(spec, message):
    with pytest.raises(ValueError, match=r"nbcore/schema/nba_precompute.yaml: player_daily_cache.*" + message):
        schema._lookback("nba_precompute", "player_daily_cache", spec)


# -- the number in the schema is the number the SQL uses -----------------------------------------

def _one_player(tmp_path):
    """A warehouse with one player's six games (10, 20, ... 60 points) and his seventh game's context."""
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    first = date(2024, 11, 1)
    games = pd.DataFrame({
        "game_id": [f"g{i}" for i in range(6)], "game_date": [first + timedelta(days=2 * i) for i in range(6)],
        "season_year": 2024, "player_lookup": "ann", "team_abbr": "BOS",
        "points": [10, 20, 30, 40, 50, 60], "minutes": [30.0] * 6})
    wh.replace_range("nba_analytics.player_game_summary", games.game_date.min(), games.game_date.max(), frame=games)
    day = first + timedelta(days=12)
    context = pd.DataFrame({"game_id": ["g6"], "game_date": [day], "season_year": [2024], "player_lookup": ["ann"],
                            "team_abbr": ["BOS"]})
    wh.replace_range("nba_analytics.upcoming_player_game_context", day, day, frame=context)
    return wh, day


def _daily_cache(wh, day, t: schema.Table) -> pd.Series:
    params = {"start_date": day, "end_date": day, "dates": [day], **t.lookback_parameters()}
    return wh.query(read_sql("derive/player_daily_cache"), params).iloc[0]


def test_the_schema_windows_are_the_windows_the_sql_computes(tmp_path):
    wh, day = _one_player(tmp_path)
    t = schema.table("player_daily_cache")
    row = _daily_cache(wh, day, t)
    assert row.points_avg_last_5 == 40.0         # 20..60, the schema's short_games: 5
    assert row.points_avg_last_10 == 35.0        # all six: fewer than the schema's games: 10
    assert row.games_used == 6 and row.games_played_season == 6
    shorter = dataclasses.replace(t, lookback={"games": 4, "short_games": 3, "season_days": 366})
    row = _daily_cache(wh, day, shorter)
    assert row.points_avg_last_5 == 50.0         # now the last 3: 40, 50, 60
    assert row.points_avg_last_10 == 45.0        # and the last 4: 30..60
    assert row.games_used == 4
    # a season reach of 9 days (from 4 November) leaves the first two games out of the season average
    reach = dataclasses.replace(t, lookback={"games": 10, "short_games": 5, "season_days": 9})
    assert _daily_cache(wh, day, reach).points_avg_season == 45.0  # 30..60
    wh.close()


# -- BigQuery takes a parameter as a window frame offset -----------------------------------------

@pytest.mark.zetasql
def test_bigquery_analyzes_every_derive_statement_with_its_window_parameters():
    """Google's analyzer (ZetaSQL, as the loopback server uses it) accepts each derive SQL with the
    parameters derive sends: a bare ``@lookback_games_preceding`` is a valid frame offset (an
    expression such as ``@lookback_games - 1`` would not be, hence the ``_preceding`` parameter)."""
    from bqserver.server import zetasql_checker
    from nbcore.warehouse.bigquery import to_query_parameter

    checker = zetasql_checker()
    tables = {("loopback", t.dataset, t.name): [{"name": c, "type": typ} for c, typ in t.columns.items()]
              for t in schema.all_tables()}
    day = date(2024, 1, 10)
    for proc in PROCESSORS:
        params = {"start_date": day, "end_date": day, "dates": [day], **proc.sql_parameters}
        api = [to_query_parameter(k, v).to_api_repr() for k, v in params.items()]
        assert checker.check(read_sql(proc.sql_name), tables, api) is None, proc.name
    bad = read_sql("derive/player_daily_cache").replace(
        "@lookback_games_preceding PRECEDING", "@lookback_games - 1 PRECEDING")
    params = {"start_date": day, "end_date": day, "dates": [day], **processor("player_daily_cache").sql_parameters}
    assert "Window framing expression must be a literal or parameter" in checker.check(
        bad, tables, [to_query_parameter(k, v).to_api_repr() for k, v in params.items()])


# -- the coverage statements are generated from the schema ---------------------------------------

def test_validate_coverage_counts_every_tracked_table_as_a_direct_read_does(small_demo):
    params, _ = small_demo
    wh = DuckDBWarehouse(params.duckdb_path, read_only=True)
    p = {"start_date": date(2024, 4, 1), "end_date": date(2024, 11, 30)}
    got = wh.query(read_sql("validate/present_games"), p)
    for t in schema.tracked_tables():
        rows = wh.query(f"SELECT game_date, game_id FROM {t.fqn} WHERE game_date BETWEEN @start_date AND @end_date", p)
        expected = rows.groupby(["game_date", "game_id"]).size()
        mine = got[got.table_name == t.name].set_index(["game_date", "game_id"]).row_count.sort_index()
        assert sorted(expected.items()) == sorted(mine.items()), t.name
    assert set(got.table_name) <= {t.name for t in schema.tracked_tables()}
    derive = wh.query(read_sql("derive/present_games"), p)
    assert set(derive.table_name) == {t.fqn for t in schema.tracked_tables() if t.phase in ("2", "3", "4")}
    wh.close()


def test_a_table_added_to_the_schema_is_covered_without_editing_sql(monkeypatch):
    from nbcore.schema import coverage

    base = schema.table("player_daily_cache")
    new = dataclasses.replace(base, name="player_usage_rates", lookback={})
    monkeypatch.setattr(coverage, "tracked_tables", lambda: schema.tracked_tables() + [new])
    for sql in (coverage.validate_present_games(), coverage.derive_present_games()):
        assert "FROM nba_precompute.player_usage_rates" in sql
        tables = {f"{t.db}.{t.name}" for t in sqlglot.parse_one(sql, read="bigquery").find_all(exp.Table)}
        assert "nba_raw.nbac_schedule" not in tables
        # values are query parameters, never text in the statement
        assert {p.name for p in sqlglot.parse_one(sql, read="bigquery").find_all(exp.Parameter)} == {"start_date", "end_date"}
    assert coverage.validate_present_games().count("UNION ALL") == len(schema.tracked_tables())
