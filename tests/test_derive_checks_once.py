"""Derive's defensive checks read the warehouse once per stage, not once per chunk, and give the
verdicts a read just before each chunk would give.

The guard for the verdicts: every chunk's checks are made twice in the same run, from the
stage's one read (what derive does) and from a fresh one-chunk read (``run_checks``) inside the
chunk's transaction, after the earlier chunks committed (what derive did before); both must
agree, pass or block, with the same ``DependencyError``.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from derive_fixtures import DERIVED, fresh_copy
from nbcore.derive import run_derive
from nbcore.derive.checks import DependencyError, run_checks
from nbcore.derive.run import _ChunkPlan
from nbcore.history import RunRecord, record_runs

PLAYOFFS = date(2024, 4, 20)  # first date of the small demo's 2023-24 playoff hole


@pytest.fixture
def both_verdicts(monkeypatch):
    """Per chunk: (first date, verdict from the stage's read, verdict from a read made now);
    a verdict is ("ok", checks made) or ("blocked", the error's fields, its message)."""
    seen: list[tuple[date, tuple, tuple]] = []
    stage_check = _ChunkPlan.check

    def check(self, chunk):
        try:
            now = ("ok", run_checks(self.wh, self.schedule, self.procs, chunk, self.produced, self.excused,
                                    self.params_file, waived=self.waived))
        except DependencyError as e:
            now = ("blocked", e.to_dict(), str(e))
        try:
            n = stage_check(self, chunk)
        except DependencyError as e:
            seen.append((chunk[0], ("blocked", e.to_dict(), str(e)), now))
            raise
        seen.append((chunk[0], ("ok", n), now))
        return n

    monkeypatch.setattr(_ChunkPlan, "check", check)
    return seen


def _count_check_reads(wh, monkeypatch) -> list[str]:
    reads: list[str] = []
    real = wh.query_file

    def counting(name, params=None):
        if name == "checks/chunk_inputs":
            reads.append(name)
        return real(name, params)

    monkeypatch.setattr(wh, "query_file", counting)
    return reads


@pytest.mark.slow  # derives the whole small demo
def test_one_check_read_for_a_stage_of_many_chunks(raw_complete, tmp_path, monkeypatch):
    params, _ = raw_complete
    p, wh = fresh_copy(params, tmp_path, chunk_days=3)
    try:
        reads = _count_check_reads(wh, monkeypatch)
        result = run_derive(p, wh=wh, progress=False)
        assert result.ok, result.error
        assert len(result.chunks) > 3 and result.checks_made > len(result.chunks)
        assert len(reads) == 1
    finally:
        wh.close()


@pytest.mark.slow  # derives the whole small demo twice
def test_later_chunks_reading_what_earlier_chunks_write_get_todays_verdicts(raw_complete, tmp_path, both_verdicts):
    """From the holes, date by date: each chunk's window holds dates the chunks before it derive
    (absent when the stage read), and a produced table's old failed run on such a date is
    superseded by the run's own success, as a read before the chunk would see."""
    params, built = raw_complete
    p, wh = fresh_copy(params, tmp_path, chunk_days=1)
    hole = PLAYOFFS + timedelta(days=1)
    try:
        assert hole in built.holes.downstream_missing
        record_runs(wh, [RunRecord(run_id="old-derive", stage="derive", phase="3", processor="player_game_summary",
                                   data_date=hole, success=False, error="an old crash",
                                   finished_at=datetime.now(timezone.utc) - timedelta(days=3))])
        result = run_derive(p, wh=wh, progress=False)
        assert result.ok, result.error
        assert len(both_verdicts) == len(result.chunks) > 10
        for first, staged, now in both_verdicts:
            assert staged == now, first
        # the chunk after the hole was checked, its previous date being the hole an earlier chunk wrote
        assert hole in result.processed_dates
        assert min(d for d in result.processed_dates if d > hole) in [first for first, _, _ in both_verdicts]
    finally:
        wh.close()


@pytest.mark.slow  # derives the small demo
@pytest.mark.parametrize("case", ["failed raw load", "raw gap on the chunk", "gap the run does not fill"])
def test_a_blocked_chunk_is_blocked_as_today(raw_complete, small_demo, derived, tmp_path, both_verdicts, case):
    dates = None
    if case == "failed raw load":
        p, wh = fresh_copy(raw_complete[0], tmp_path, chunk_days=1)
        record_runs(wh, [RunRecord(run_id="test-load", stage="load", phase="2", processor="bdl_player_boxscores",
                                   data_date=PLAYOFFS - timedelta(days=1), success=False, error="HTTP 503",
                                   finished_at=datetime.now(timezone.utc) + timedelta(days=1))])
    elif case == "raw gap on the chunk":
        p, wh = fresh_copy(small_demo[0], tmp_path, chunk_days=1)  # raw holes still open
    else:  # later chunks' windows hold both dates the run writes first and one it never writes
        p, wh = fresh_copy(derived[0], tmp_path, chunk_days=2)
        wh.execute("DELETE FROM nba_analytics.player_game_summary WHERE game_date = @d", {"d": date(2024, 4, 8)})
        dates = [date(2024, 4, 5) + timedelta(days=i) for i in range(7) if i != 3]
    try:
        result = run_derive(p, wh=wh, progress=False, dates=dates, raise_on_failure=False)
        assert not result.ok
        *passed, (first, staged, now) = both_verdicts
        assert (passed or case == "raw gap on the chunk") and staged == now and staged[0] == "blocked"
        assert all(s == n and s[0] == "ok" for _, s, n in passed)
        assert result.failed_date == first and result.dependency == staged[1]
        assert staged[2] in result.error
    finally:
        wh.close()


def test_a_check_read_that_fails_fails_the_first_chunk(raw_complete, tmp_path, monkeypatch):
    params, _ = raw_complete
    p, wh = fresh_copy(params, tmp_path, chunk_days=7)
    real = wh.query_file

    def broken(name, params=None):
        if name == "checks/chunk_inputs":
            raise RuntimeError("warehouse went away")
        return real(name, params)

    try:
        before = wh.checksums(DERIVED)
        monkeypatch.setattr(wh, "query_file", broken)
        result = run_derive(p, wh=wh, progress=False, raise_on_failure=False)
        assert not result.ok and result.failed_date == result.requested_dates[0]
        assert result.error.startswith("defensive checks could not run: RuntimeError: warehouse went away")
        assert result.dependency is None and not result.processed_dates
        assert all(c.status == "not_run" for c in result.chunks[1:]) and len(result.chunks) > 1
        assert wh.checksums(DERIVED) == before
    finally:
        wh.close()
