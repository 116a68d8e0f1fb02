"""The report's words and colours, on small hand-built archives: what a reader sees for a
hole, a stale date, a waived date, a season, a rate and a path."""
from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from nbcore import charts, report, report_html
from nbcore.params import PROJECT_ROOT
from nbcore.validate import date_ranges


def _entry(table, phase, season, expected, missing, ranges, **extra):
    return {"phase": phase, "table": table, "season_year": season, "expected_dates": expected,
            "present_dates": expected - len(missing), "missing_dates": missing, "missing_ranges": ranges,
            "rows": 10, **extra}


def _archive(tmp_path: Path, before: list[dict], after: list[dict], manifest: dict | None = None) -> Path:
    run_dir = tmp_path / "runs" / "20260101-000000-t"
    run_dir.mkdir(parents=True)
    (run_dir / "validate_before.json").write_text(json.dumps({"tables": before}))
    (run_dir / "validate_after.json").write_text(json.dumps({"tables": after}))
    (run_dir / "manifest.json").write_text(json.dumps(manifest or {"run_id": run_dir.name, "status": "succeeded"}))
    return run_dir


def test_an_incomplete_share_never_reads_as_100_percent():
    assert report.pct_label(100.0) == "100 %"
    assert report.pct_label(99.96) == "99.9 %"
    assert report.pct_label(99.5) == "99.5 %"
    assert charts.pct_text(99.99) == "99.9"
    assert report.rate_label(0.598) == "59.8 %"
    assert report.season_label(2021) == "2021-22" and report.season_label(2099) == "2099-00"
    assert report.plural(1, "failed attempt") == "1 failed attempt" and report.plural(3, "entry", "entries") == "3 entries"


def test_colour_scale_makes_every_hole_plain():
    complete = charts.category(100.0, 0)
    assert complete.key == "complete"
    for pct in (99.5, 95.0, 80.0, 30.0, 0.0):
        assert charts.category(pct, 1).color != complete.color, pct
    assert charts.category(99.5, 1).key == "almost" and charts.category(78.0, 3).key == "partial"
    assert charts.category(100.0, 0, stale=2).key == "stale"
    assert charts.category(97.0, 0, waived=1).key == "waived"
    assert len({c.color for c in charts.CATEGORIES}) == len(charts.CATEGORIES)


def test_closed_ranges_are_validates_ranges_and_identical_ones_are_one_row(tmp_path):
    # playoff dates with off days: validate grouped them on the schedule into one range
    expected = [date(2022, 4, 16) + timedelta(days=2 * i) for i in range(21)]
    missing = expected[:12] + expected[14:]  # two present game dates in the middle
    ranges = [r.label() for r in date_ranges(missing, expected)]
    assert len(ranges) == 2
    iso = [d.isoformat() for d in missing]
    tables = [("player_game_summary", "3"), ("team_offense_game_summary", "3"), ("player_daily_cache", "4")]
    before = [_entry(t, p, 2021, 21, iso, ranges) for t, p in tables]
    # one table kept its last two dates missing: its closed range is split there, not merged
    after = [_entry(t, p, 2021, 21, [] if t != "player_daily_cache" else iso[-2:], [] if t != "player_daily_cache"
                    else [r.label() for r in date_ranges(missing[-2:], expected)]) for t, p in tables]
    run = report.load_run(_archive(tmp_path, before, after))
    closed = report.dates_closed(run)
    assert list(closed[closed.table == "player_game_summary"].ranges) == ["; ".join(ranges)]
    daily = closed[closed.table == "player_daily_cache"].ranges.iloc[0]
    assert daily == "; ".join(r.label() for r in date_ranges(missing[:-2], expected))
    grouped = report.dates_closed_grouped(run)
    assert len(grouped) == 2  # the two analytics tables share a row; the cache has its own ranges
    shared = grouped[grouped.tables.map(len) == 2].iloc[0]
    assert shared.tables == ["player_game_summary", "team_offense_game_summary"] and shared.season == 2021


def test_why_and_plan_group_dates_with_the_same_function():
    expected = [date(2024, 4, 20), date(2024, 4, 22), date(2024, 4, 24), date(2024, 4, 26)]
    assert report.group_dates([expected[0], expected[1], expected[3]], expected) == [
        (date(2024, 4, 20), date(2024, 4, 22), 2), (date(2024, 4, 26), date(2024, 4, 26), 1)]
    # without the schedule every calendar day counts: an unknown day never joins two ranges
    assert len(report.group_dates([date(2024, 4, 20), date(2024, 4, 22)])) == 2


def test_headline_and_sections_name_stale_waived_and_missing_apart(tmp_path):
    before = [_entry("player_game_summary", "3", 2023, 10, ["2024-04-20", "2024-04-21"], ["2024-04-20 → 2024-04-21 (2 dates)"]),
              _entry("bdl_player_boxscores", "2", 2023, 10, ["2024-04-21"], ["2024-04-21"])]
    after = [_entry("player_game_summary", "3", 2023, 10, ["2024-04-21"], ["2024-04-21"], stale_dates=["2024-04-25"]),
             _entry("bdl_player_boxscores", "2", 2023, 10, ["2024-04-21"], ["2024-04-21"], waived_dates=["2024-04-21"])]
    run = report.load_run(_archive(tmp_path, before, after))
    # the raw date waived during the run is counted as waived, never as closed (nbcore.state.closed)
    assert report.headline(run) == ("1 closed, 1 waived of 3 missing table-dates in 2 tables; 1 open in 1 table; "
                                    "1 stale table-date (present but built from changed inputs).")
    open_ = report.dates_open_grouped(run)
    assert sorted(open_.kind) == ["missing", "stale", "waived"]
    cells = report.cell_status(run.after).set_index("table")
    assert charts.category(cells.loc["bdl_player_boxscores"].pct, cells.loc["bdl_player_boxscores"].missing,
                           cells.loc["bdl_player_boxscores"].waived).key == "waived"
    html = report_html.completeness(run).data
    assert "1 stale" in html and "1 waived" in html  # counted in the cell, whatever its colour
    assert charts.BY_KEY["almost"].color in html and charts.BY_KEY["waived"].color in html


def test_a_report_shows_no_path_of_the_machine_that_ran_it(tmp_path):
    run_dir = _archive(tmp_path, [], [], {
        "run_id": "r1", "status": "succeeded", "warehouse": f"duckdb:{tmp_path}/warehouse.duckdb",
        "params": {"seasons": [2021]}, "git_commit": "a" * 40, "git_dirty": True,
        "stages": [{"name": "load", "status": "failed", "started_at": "2026-01-01T00:00:00+00:00", "seconds": 1.0,
                    "error": f"cannot read {tmp_path}/bucket/bdl/2024-01-01.json: truncated"}]})
    run = report.load_run(run_dir)
    header = report.run_header(run)["value"]
    assert header["warehouse"] == "duckdb:../../warehouse.duckdb"
    assert header["scope"] == "seasons 2021-22" and header["runbook commit"].endswith("(with local changes)")
    assert report.display_path(PROJECT_ROOT / "warehouse" / "demo.duckdb") == os.path.join("warehouse", "demo.duckdb")
    assert report.timeline(run).error.iloc[0] == "cannot read ../../bucket/bdl/2024-01-01.json: truncated"
    summary = report.summary_markdown(run)
    assert str(tmp_path) not in summary and "`report.html`" in summary


def test_grading_in_peoples_units_with_every_metric_captioned():
    metrics = pd.DataFrame([{"system_id": "ensemble", "season_year": 2021, "graded": 12345, "voided": 10, "mae": 4.9463,
                             "bias": -0.37, "within_3_pct": 42.72, "calls": 3545, "hit_rate": 0.598,
                             "hit_rate_low": 0.581, "hit_rate_high": 0.614, "pushes": 15, "passes": 2712}])
    row = report.grading_table(metrics).iloc[0]
    assert row.season == "2021-22" and row.graded == "12,345" and row.MAE == "4.95 pts" and row.bias == "-0.37 pts"
    assert row["within 3"] == "42.7 %" and row["hit rate"] == "59.8 % (58.1 % to 61.4 %)"
    html = report_html.table_html(report.grading_table(metrics))
    assert set(report.grading_table(metrics).columns) - {"system", "season"} <= set(report.METRIC_CAPTIONS)
    assert "positive means the system over-predicts" in report.METRIC_CAPTIONS["bias"]
    assert "None" not in html and "nan" not in html.lower().replace("nanosecond", "")


def test_progress_in_a_runbook_kernel_is_one_line(monkeypatch, capsys):
    from nbcore import progress

    monkeypatch.setenv(progress.RUN_ENV, "20260101-000000-t")
    bar = progress.tqdm(range(3), desc="derive", unit="chunk")
    for _ in bar:
        bar.set_postfix_str("2024-04-20..2024-05-04")
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.startswith("derive: 3/3 chunks in ") and out.out.count("\n") == 1
    monkeypatch.delenv(progress.RUN_ENV)
    assert not isinstance(progress.tqdm(range(1), disable=True), progress.SummaryBar)


def test_a_blocked_run_says_so_first(tmp_path):
    before = [_entry("bdl_player_boxscores", "2", 2023, 10, ["2024-04-20", "2024-04-21", "2024-04-22"],
                     ["2024-04-20 → 2024-04-22 (3 dates)"])]
    run_dir = _archive(tmp_path, before, [], {"run_id": "r2", "status": "blocked", "stopped_at": "gate",
                                              "reason": "raw incomplete: 3 dates missing in bdl_player_boxscores"})
    (run_dir / "validate_after.json").unlink()
    run = report.load_run(run_dir)
    assert report.headline(run) == ("Run blocked at gate: raw incomplete: 3 dates missing in bdl_player_boxscores; "
                                    "3 missing table-dates found in 1 table; 0 confirmed closed (no after snapshot).")
    assert 'class="rb-headline rb-bad"' in report_html.headline(run).data


def test_stale_dates_rebuilt_are_counted_apart_from_missing_ones_closed(tmp_path):
    before = [_entry("player_daily_cache", "4", 2023, 10, ["2024-04-20"], ["2024-04-20"], stale_dates=["2024-04-22", "2024-04-23"])]
    after = [_entry("player_daily_cache", "4", 2023, 10, [], [])]
    run = report.load_run(_archive(tmp_path, before, after))
    assert report.headline(run) == "All 1 missing table-date closed in 1 table; 0 open; 2 stale table-dates rebuilt."
    before[0]["missing_dates"], before[0]["missing_ranges"], before[0]["present_dates"] = [], [], 10
    run = report.load_run(_archive(tmp_path / "again", before, after))
    assert report.headline(run) == "No table-date was missing; 2 stale table-dates rebuilt."
