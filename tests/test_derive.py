"""Derive on the small demo: closes the holes, idempotent, chunk-size independent, defensive
checks and their bypasses, stop-on-error, and crash atomicity."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
import yaml
from click.testing import CliRunner

from derive_fixtures import DERIVED, dates_present, fresh_copy
from nbcore.cli import main
from nbcore.derive import Schedule, make_chunks, run_derive
from nbcore.derive.run import DeriveFailed
from nbcore.history import RunRecord, record_runs
from nbcore.validate import run_validate
from nbcore.warehouse.duckdb import DuckDBWarehouse

FIRST_HOLE = date(2024, 3, 31)  # the small demo's first downstream hole (raw missing on it)
PLAYOFFS = date(2024, 4, 20)  # first date of the 2023-24 playoff hole


def _failed_load(wh, processor: str, day: date) -> None:
    record_runs(wh, [RunRecord(run_id="test-load", stage="load", phase="2", processor=processor, data_date=day,
                               success=False, error="HTTP 503 from the scraper bucket",
                               finished_at=datetime.now(timezone.utc) + timedelta(days=1))])


def _history(wh, run_id: str):
    return wh.query("SELECT processor, data_date, success, rows_written, error FROM nba_reference.processor_run_history "
                    "WHERE run_id = @r", {"r": run_id})


def test_holes_match_the_demo_spec(small_demo):
    params, built = small_demo
    assert FIRST_HOLE == min(built.holes.downstream_missing)
    assert PLAYOFFS in built.holes.downstream_missing


def test_derive_closes_every_phase3_and_phase4_hole(derived):
    params, built, result = derived
    assert result.ok, result.error
    # every hole, plus the dates whose windows hold a filled hole (stale: restated in the same run)
    holes = set(built.holes.downstream_missing)
    assert holes <= set(result.processed_dates)
    stale = {date.fromisoformat(d) for ds in result.stale_dates.values() for d in ds}
    assert set(result.processed_dates) - holes <= stale and stale
    assert result.checks_enabled and result.checks_made > 0 and not result.bypasses
    wh = DuckDBWarehouse(params.duckdb_path, read_only=True)
    try:
        v = run_validate(params, wh=wh, progress=False)
        for table in DERIVED:
            assert v.missing_dates(table) == [] and v.partial_dates(table) == {}, table
        hist = _history(wh, result.run_id)
    finally:
        wh.close()
    # one history row per processor per date it rebuilt, all successful, rows recorded
    assert len(hist) >= 9 * len(holes)
    assert hist.success.all() and (hist.rows_written > 0).all()
    assert not hist.duplicated(["processor", "data_date"]).any()
    s = result.summary()
    assert s["status"] == "succeeded" and s["dates_processed"] == len(result.processed_dates)


@pytest.mark.slow
def test_rerun_changes_nothing(derived, rederived, tmp_path):
    params, built, _ = derived
    p, wh = fresh_copy(params, tmp_path)
    try:
        before = wh.checksums()
        again = run_derive(p, wh=wh, progress=False)
        assert again.ok and again.requested_dates == [] and wh.checksums() == before
    finally:
        wh.close()
    # re-deriving every date twice: the second pass changes nothing either (``rederived`` is
    # ``derived`` after the first pass: every final date, backfill mode, chunk_days 400)
    bf, _ = rederived
    p, wh = fresh_copy(bf, tmp_path / "again", backfill_mode=True, chunk_days=400)
    try:
        first = wh.checksums()
        final = Schedule(wh.query_file("derive/final_games")).dates
        assert run_derive(p, wh=wh, progress=False, dates=final).ok
        assert wh.checksums() == first
    finally:
        wh.close()


@pytest.mark.slow
def test_chunk_days_1_and_400_give_identical_tables(raw_complete, derived, tmp_path):
    params, built = raw_complete
    sums = {}
    for days in (1, 400):
        p, wh = fresh_copy(params, tmp_path / str(days), chunk_days=days)
        try:
            result = run_derive(p, wh=wh, progress=False)
            assert result.ok, result.error
            # 400 days: one chunk per season (a chunk never spans two; these dates are in 2023-24 and 2024-25)
            seasons = {d.year if d.month >= 8 else d.year - 1 for d in result.processed_dates}
            assert len(seasons) == 2
            assert len(result.chunks) == (len(result.processed_dates) if days == 1 else len(seasons))
            sums[days] = wh.checksums(DERIVED)
        finally:
            wh.close()
    assert sums[1] == sums[400]
    ref = DuckDBWarehouse(derived[0].duckdb_path, read_only=True)
    try:
        assert ref.checksums(DERIVED) == sums[1]  # chunk_days 30 too
    finally:
        ref.close()


def test_make_chunks_groups_dates_by_calendar_span():
    days = [date(2024, 1, d) for d in range(1, 11)]
    targets = [days[0], days[1], days[2], days[4], days[5], days[9]]
    assert make_chunks(targets, 400) == [targets]
    assert make_chunks(targets, 5) == [days[0:3] + [days[4]], [days[5], days[9]]]
    assert make_chunks(targets, 2) == [days[0:2], [days[2]], days[4:6], [days[9]]]
    assert make_chunks(targets, 1) == [[d] for d in targets]


def test_a_chunk_never_rewrites_a_date_it_was_not_asked_for(derived, tmp_path):
    params, _, _ = derived
    p, wh = fresh_copy(params, tmp_path, backfill_mode=True, chunk_days=400)
    keep, redo = date(2024, 4, 9), [date(2024, 4, 8), date(2024, 4, 10)]
    try:
        wh.execute("UPDATE nba_precompute.player_daily_cache SET points_avg_last_5 = -1 WHERE game_date = @d", {"d": keep})
        result = run_derive(p, wh=wh, progress=False, dates=redo)
        assert result.ok and len(result.chunks) == 1
        left = wh.query("SELECT DISTINCT points_avg_last_5 FROM nba_precompute.player_daily_cache WHERE game_date = @d",
                        {"d": keep})
        assert list(left.points_avg_last_5) == [-1]
    finally:
        wh.close()


@pytest.mark.slow  # derives the small demo
def test_check_blocks_a_date_whose_upstream_failed_and_stops_there(raw_complete, tmp_path):
    params, built = raw_complete
    p, wh = fresh_copy(params, tmp_path, chunk_days=1)
    try:
        before = {t: dates_present(wh, t) for t in DERIVED}
        _failed_load(wh, "bdl_player_boxscores", PLAYOFFS - timedelta(days=1))
        with pytest.raises(DeriveFailed) as failed:
            run_derive(p, wh=wh, progress=False)
        result = failed.value.result
        assert not result.ok and failed.value.exit_code == 1 and "player_game_summary" in str(failed.value)
        assert result.failed_date == PLAYOFFS and result.failed_processor == "player_game_summary"
        dep = result.dependency
        assert dep["upstream"] == "nba_raw.bdl_player_boxscores"
        assert dep["missing_dates"] == [(PLAYOFFS - timedelta(days=1)).isoformat()]
        assert "HTTP 503" in result.error and dep["fix_command"] == "runbook load --params PARAMS.yaml --retry-failed test-load"
        # the hole dates before it (and the stale dates after them) were derived, nothing on or after it
        earlier = [d for d in built.holes.downstream_missing if d < PLAYOFFS]
        assert set(earlier) <= set(result.processed_dates) and max(result.processed_dates) < PLAYOFFS
        assert result.not_run_dates and min(result.not_run_dates) > PLAYOFFS
        for t in DERIVED:
            have = dates_present(wh, t)
            assert have == before[t] | set(earlier), t
        hist = _history(wh, result.run_id)
        failed = hist[~hist.success]
        assert list(failed.processor) == ["player_game_summary"]
        assert set(hist[hist.success].data_date.dt.date) == set(result.processed_dates)
        s = result.summary()
        assert s["status"] == "failed" and s["failed_date"] == "2024-04-20" and s["failed_processor"] == "player_game_summary"
    finally:
        wh.close()


@pytest.mark.parametrize("bypass", [{"backfill_mode": True}, {"strict_mode": False}])
def test_bypasses_skip_the_checks_and_say_so(raw_complete, tmp_path, bypass, capsys):
    params, _ = raw_complete
    p, wh = fresh_copy(params, tmp_path, end_date=date(2024, 4, 21), **bypass)
    try:
        _failed_load(wh, "bdl_player_boxscores", PLAYOFFS - timedelta(days=1))
        result = run_derive(p, wh=wh, progress=True)
        assert result.ok and PLAYOFFS in result.processed_dates
        assert not result.checks_enabled and result.checks_made == 0
        word = "backfill_mode" if "backfill_mode" in bypass else "strict_mode"
        assert any(word in b for b in result.bypasses)
        assert any(word in b for b in result.summary()["bypasses"])
        assert word in capsys.readouterr().out
    finally:
        wh.close()


@pytest.mark.slow  # derives the small demo
def test_check_blocks_a_raw_gap_on_the_chunk(small_demo, tmp_path):
    """The before state: raw holes still open. Partitions blocked by them are not planned, but the
    first planned date whose chunk reads a raw gap is refused, naming the raw table and the load."""
    params, built = small_demo
    p, wh = fresh_copy(params, tmp_path, chunk_days=1)
    try:
        before = wh.checksums(DERIVED)
        result = run_derive(p, wh=wh, progress=False, raise_on_failure=False)
        raw_holes = {d for days in built.holes.raw_missing.values() for d in days} | set(built.holes.partial.get("bdl_player_boxscores", {}))
        assert not result.ok and result.failed_date in raw_holes, (result.error, result.dependency)
        assert result.dependency["upstream"].startswith("nba_raw.")
        assert result.dependency["missing_dates"] == [result.failed_date.isoformat()]
        assert "chunk's dates" in result.error and result.dependency["fix_command"].startswith("runbook load --params")
        assert wh.checksums(DERIVED) == before  # stop on error: nothing written anywhere
        assert all(c.status == "not_run" for c in result.chunks[1:]) and len(result.chunks) > 1
    finally:
        wh.close()


def test_check_blocks_a_gap_in_the_lookback_window(derived, tmp_path):
    params, _, _ = derived
    p, wh = fresh_copy(params, tmp_path)
    day, gap = date(2024, 4, 10), date(2024, 4, 8)
    try:
        wh.execute("DELETE FROM nba_analytics.player_game_summary WHERE game_date = @d", {"d": gap})
        result = run_derive(p, wh=wh, progress=False, dates=[day], raise_on_failure=False)
        assert not result.ok
        assert result.failed_processor == "player_shot_zone_analysis"
        assert result.dependency["upstream"] == "nba_analytics.player_game_summary"
        assert result.dependency["missing_dates"] == [gap.isoformat()]
        assert "10-game lookback" in result.error
        assert result.dependency["fix_command"].startswith("runbook derive") and "2024-04-08" in result.dependency["fix_command"]
    finally:
        wh.close()


def test_a_season_start_is_never_a_gap(small_demo, tmp_path):
    """2024-25's first date: the previous season's playoffs are still holes, which is fine."""
    params, built = small_demo
    opener = min(d for d in built.league.game_dates if d.year == 2024 and d.month >= 10)
    p, wh = fresh_copy(params, tmp_path)
    try:
        result = run_derive(p, wh=wh, progress=False, dates=[opener])
        assert result.ok, result.error
        assert result.checks_made > 0
    finally:
        wh.close()


@pytest.mark.slow  # derives the small demo
def test_waived_dates_are_skipped_and_not_gaps(raw_complete, tmp_path):
    params, built = raw_complete
    p, wh = fresh_copy(params, tmp_path, end_date=date(2024, 4, 22))
    try:
        result = run_derive(p, wh=wh, progress=False, skip_dates=[PLAYOFFS])
        assert result.ok, result.error
        assert result.skipped_dates == [PLAYOFFS] and PLAYOFFS not in result.processed_dates
        assert date(2024, 4, 21) in result.processed_dates  # its window holds the waived date
        assert result.summary()["skipped_dates"] == ["2024-04-20"]
    finally:
        wh.close()


@pytest.mark.slow  # derives the small demo
def test_a_crash_mid_chunk_leaves_no_partial_chunk(raw_complete, tmp_path, monkeypatch):
    params, built = raw_complete
    p, wh = fresh_copy(params, tmp_path, chunk_days=10)
    try:
        before = {t: dates_present(wh, t) for t in DERIVED}
        real = wh.write_changes

        def crashing(table, start, end, **kw):
            if table.endswith("player_composite_factors") and start >= PLAYOFFS:
                raise RuntimeError("injected crash")
            return real(table, start, end, **kw)

        monkeypatch.setattr(wh, "write_changes", crashing)
        result = run_derive(p, wh=wh, progress=False, raise_on_failure=False)
        assert not result.ok and result.failed_processor == "player_composite_factors"
        assert result.failed_date == PLAYOFFS and "injected crash" in result.error
        earlier = {d for d in built.holes.downstream_missing if d < PLAYOFFS}
        for t in DERIVED:  # earlier chunks committed; the failing chunk left nothing, even phase 3
            assert dates_present(wh, t) == before[t] | earlier, t
        hist = _history(wh, result.run_id)
        assert set(hist[hist.success].data_date.dt.date) == set(result.processed_dates)
        assert earlier <= set(result.processed_dates) and max(result.processed_dates) < PLAYOFFS
        assert set(hist[~hist.success].processor) == {"player_composite_factors"}
    finally:
        wh.close()


@pytest.mark.slow  # derives the small demo through the CLI
def test_cli_derive_exit_codes(raw_complete, small_demo, tmp_path):
    def params_file(src, sub, **extra):
        p, wh = fresh_copy(src, tmp_path / sub, **extra)
        wh.close()
        f = tmp_path / sub / "params.yaml"
        data = {"run_name": "cli", "duckdb_path": str(p.duckdb_path), "bucket": str(p.bucket),
                "archive_dir": str(tmp_path / sub / "runs"), "seasons": [2023, 2024], **extra}
        f.write_text(yaml.safe_dump(data))
        return str(f)

    runner = CliRunner()
    ok = runner.invoke(main, ["derive", "--params", params_file(raw_complete[0], "ok"), "--end-date", "2024-04-05"])
    assert ok.exit_code == 0, ok.output
    assert re.search(r"derive succeeded: (\d+)/\1 dates", ok.output) and "player_game_summary" in ok.output
    blocked = runner.invoke(main, ["derive", "--params", params_file(small_demo[0], "blocked")])
    assert blocked.exit_code == 1 and "blocked by its upstream nba_raw." in blocked.output
    bypassed = runner.invoke(main, ["derive", "--params", params_file(small_demo[0], "bypass"), "--backfill-mode",
                                    "--dates", "2024-04-20"])
    assert bypassed.exit_code == 0, bypassed.output
    assert "1/1 date " in bypassed.output  # one date: singular
