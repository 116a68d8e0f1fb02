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
    assert sorted(open_.kind) == ["missing", "stale"]  # waived is reviewed, never open
    assert report.dates_waived(run).table.tolist() == ["bdl_player_boxscores"]
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


def _steps(*rows):
    return [{"name": n, "stage": n, "status": st, "started_at": a, "ended_at": b, "seconds": s} for n, st, a, b, s in rows]


def test_a_run_shows_when_it_ended_and_its_run_time_while_its_report_is_written(tmp_path, monkeypatch):
    """The report step runs inside the run: the manifest has no end yet, the report still says when
    the run ended (now) and how long it ran, like summary.md written after it."""
    from nbcore import runlog

    run_dir = _archive(tmp_path, [], [], {
        "run_id": "r3", "status": "running", "started_at": "2026-01-01T00:00:00+00:00", "ended_at": None,
        "stages": _steps(("load", "succeeded", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:20+00:00", 20.0),
                         ("report", "running", "2026-01-01T00:00:21+00:00", None, None))})
    monkeypatch.setenv(runlog.RUN_DIR_ENV, str(run_dir))  # as the driver sets it for the report's kernel
    run = report.load_run(run_dir)
    header = report.run_header(run)["value"]
    assert header["ended"].endswith(" UTC") and header["run time"].endswith(" s")
    labels = [what for _, what in report.key_figures_list(run)]
    assert labels[-1] == "run time"
    assert "run time" in report_html.headline(run).data
    # the same archive read after the run (the driver closed the manifest): its recorded end
    monkeypatch.delenv(runlog.RUN_DIR_ENV)
    m = json.loads((run_dir / "manifest.json").read_text())
    m.update(status="succeeded", ended_at="2026-01-01T00:00:30+00:00", seconds=30.0)
    (run_dir / "manifest.json").write_text(json.dumps(m))
    run = report.load_run(run_dir)
    assert report.run_time(run) == (30.0, 1)
    assert report.run_header(run)["value"]["ended"] == "2026-01-01 00:00 UTC"


def test_a_resumed_runs_time_is_summed_over_its_attempts(tmp_path):
    """28 s, stopped for an hour, then 43 s: 71 s in two attempts, not 28 s and not an hour."""
    run_dir = _archive(tmp_path, [], [], {
        "run_id": "r4", "status": "succeeded", "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": "2026-01-01T01:00:43+00:00", "seconds": 3643.0,
        "resumes": [{"at": "2026-01-01T01:00:00+00:00", "from": "grade"}],
        "stages": _steps(("derive", "succeeded", "2026-01-01T00:00:01+00:00", "2026-01-01T00:00:20+00:00", 19.0),
                         ("grade", "succeeded", "2026-01-01T01:00:01+00:00", "2026-01-01T01:00:30+00:00", 29.0))})
    (run_dir / "run.log").write_text(
        "2026-01-01T00:00:00.000Z driver   run started (pid 1, 3 step(s) to run)\n"
        "2026-01-01T00:00:10.000Z derive   chunk 1/2 2024-04-20..2024-04-24 succeeded: 12 rows in 1.0 s\n"
        "2026-01-01T00:00:28.000Z driver   run failed (exit 1), stopped at grade; resume with: runbook resume r4\n"
        "2026-01-01T01:00:03.000Z driver   re-planning: the warehouse changed since the plan\n"  # before its start line
        "2026-01-01T01:00:06.000Z driver   resume from grade (pid 2, 2 step(s) to run)\n"
        "2026-01-01T01:00:42.000Z driver   run succeeded (exit 0)\n")
    run = report.load_run(run_dir)
    tries = report.attempts(run)
    assert list(tries.seconds) == [28.0, 43.0] and list(tries.outcome) == ["failed", "succeeded"]
    assert list(tries["from"]) == ["derive", "grade"]
    assert report.run_time(run) == (71.0, 2)
    assert report.run_time_label(run) == "71.0 s, summed over 2 attempts (28.0 s + 43.0 s)"
    assert ("71.0 s", "run time, 2 attempts summed") in report.key_figures_list(run)
    html = report_html.timeline(run).data
    assert "2 attempts" in html and "28.0 s" in html and "43.0 s" in html
    summary = report.summary_markdown(run)
    assert "- **ended**: 2026-01-01 01:00 UTC" in summary and "## Attempts (run time 71.0 s, summed)" in summary


def _gate_archive(tmp_path, gate: dict) -> Path:
    return _archive(tmp_path, [], [], {"run_id": "r5", "status": "succeeded", "stages": [
        {"name": "gate", "stage": "gate", "status": "succeeded", "record": {"status": "passed", "gate": "raw", **gate}}]})


def test_a_check_that_only_warns_is_warned_never_failed(tmp_path):
    warn = {"check": "players per game", "source": "bdl_player_boxscores", "date": "2024-04-20",
            "detail": "7 players for BOS", "blocking": False}
    run = report.load_run(_gate_archive(tmp_path, {
        "warnings": [warn, {**warn, "date": "2024-04-22"}],
        "checks": [{"check": "complete against the schedule", "source": "bdl_player_boxscores", "blocking": True,
                    "passed": True, "problems": 0},
                   {"check": "players per game (calibrated; warns)", "source": "bdl_player_boxscores", "blocking": False,
                    "passed": False, "problems": 2},
                   {"check": "duplicate keys", "source": "nbac_gamebook_player_stats", "blocking": True,
                    "passed": False, "problems": 1}]}))
    checks = report.gate_checks(run)
    assert list(checks.passed) == ["passed", "warned", "FAILED"]
    assert checks.check.iloc[1] == "players per game (calibrated)"
    assert report.gate_check_counts(checks) == "3 checks: 1 passed, 1 warned, 1 failed"
    html = report_html.gate_checks(run).data
    assert '<span class="rb-warn-text">warned</span>' in html and '<span class="rb-bad-text">FAILED</span>' in html
    # the same calibrated check named as it is in the record's warnings, without the suffix
    rec = json.loads((run.run_dir / "manifest.json").read_text())
    rec["stages"][0]["record"]["checks"] = [{"check": "players per game", "source": "bdl_player_boxscores",
                                             "blocking": False, "passed": False, "problems": 2}]
    (run.run_dir / "manifest.json").write_text(json.dumps(rec))
    assert list(report.gate_checks(report.load_run(run.run_dir)).passed) == ["warned"]


def test_a_reason_repeated_on_many_dates_is_said_once_with_a_count(tmp_path):
    reason = "No book posted player points lines for these nights; nothing to load."
    waived = [{"source": "odds_api_player_points_props", "date": f"2024-10-{d:02d}", "game_id": None, "check": None,
               "present": False, "reason": reason, "approved_by": "jane.doe"} for d in range(20, 30)]
    waived.append({"source": "bdl_player_boxscores", "date": "2024-11-02", "game_id": None, "check": None,
                   "present": False, "reason": "The feed lost it.", "approved_by": "sam.lee"})
    run = report.load_run(_gate_archive(tmp_path, {"waived": waived}))
    text = report.gate_verdict(run)["value"]["waived"]
    assert text.count(reason) == 1, text
    assert (f"odds_api_player_points_props, {reason}, approved by jane.doe (× 10, 2024-10-20 → 2024-10-29 (10 dates))"
            in text), text
    assert "bdl_player_boxscores, The feed lost it., approved by sam.lee (2024-11-02)" in text
    assert report._value_text(["a", "b", "a", "a"]) == "a (× 3), b"


def test_one_graded_figure_per_system_and_overall_against_break_even(tmp_path):
    rows = [{"system_id": sys_id, "season_year": s, "graded": g, "voided": 5, "mae": mae, "bias": 0.2,
             "within_3_pct": 40.0, "calls": right + wrong + 10, "correct": right, "wrong": wrong,
             "hit_rate": right / (right + wrong), "hit_rate_low": 0.5, "hit_rate_high": 0.6, "pushes": 10, "passes": 3}
            for sys_id, s, g, mae, right, wrong in [("baseline", 2023, 100, 5.0, 50, 50), ("baseline", 2024, 300, 4.0, 160, 140),
                                                    ("ensemble", 2023, 100, 4.5, 60, 40), ("ensemble", 2024, 300, 3.5, 180, 120)]]
    metrics = pd.DataFrame(rows)
    table = report.grading_table(metrics)
    assert list(zip(table.system, table.season)) == [
        ("baseline", "2023-24"), ("baseline", "2024-25"), ("baseline", "all seasons"),
        ("ensemble", "2023-24"), ("ensemble", "2024-25"), ("ensemble", "all seasons"), ("all systems", "all seasons")]
    overall = table.iloc[-1]
    assert overall.graded == "800" and overall.MAE == "4.00 pts"  # weighted by graded predictions
    assert overall["hit rate"].startswith(report.rate_label(450 / 800) + " (")  # 450 right of 800 decided calls
    assert overall["vs break-even"] == f"{100 * (450 / 800 - 110 / 210):+.1f} pts" == "+3.9 pts"
    assert table.iloc[2]["vs break-even"] == "+0.1 pts"  # baseline: 210 right of 400, 52.5 %
    run_dir = _archive(tmp_path, [], [], {"run_id": "r6", "status": "succeeded", "stages": [
        {"name": "grade", "stage": "grade", "status": "succeeded",
         "record": {"status": "succeeded", "graded": 350, "dates": 12, "rows_written": {report.GRADED_TABLE: 420}}}]})
    metrics.to_csv(run_dir / report.GRADING_CSV, index=False)
    run = report.load_run(run_dir)
    assert report.key_figures(run)["graded"] == 800 == report.graded_total(run)
    note = report.graded_note(run)
    assert note.startswith("Graded predictions (800): rows of prediction_accuracy") and "2 systems" in note
    assert "350 graded predictions on them" in note and "wrote 420 rows" in note
    chart = report_html.hit_rate_chart(metrics)
    assert chart.count('class="rb-hr-ref rb-hr-even"') == 7 and "52.4 %: break-even at −110 odds" in chart
