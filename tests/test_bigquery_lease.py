"""One writer per BigQuery warehouse, across machines; and a backfill that survives BigQuery's
transient errors and a crash mid-transaction with the same tables as a clean run.

The "backfill" here is what a derive chunk does on BigQuery: in one transaction, replace a
day from a frame, replace the next day from SQL reading the first (the session sees its own
writes), and append the run-history rows."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

import bq_chunks
from bq_chunks import BOX, HIST, box_rows
from bqserver import BigQueryLoopback
from nbcore.warehouse import bigquery as bqmod
from nbcore.warehouse.lease import Lease, LeaseHeldError, unlock

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

PROJECT = "lease-proj"
DAYS = [date(2024, 1, 2) + timedelta(days=2 * i) for i in range(4)]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def server():
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        yield srv


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(bqmod, "RETRY_DELAYS", (0.01, 0.02, 0.04))


def make_wh(server, suffix: str, run_id: str = "run-1"):
    return bq_chunks.make_wh(server, PROJECT, suffix, run_id)


def backfill_chunk(wh, day: date, run_id: str = "run-1") -> None:
    nxt = day + timedelta(days=1)
    with wh.transaction():
        wh.replace_range(BOX, day, day, frame=box_rows(day, 5))
        copied = wh.replace_range(BOX, nxt, nxt, sql=f"SELECT * REPLACE (@nxt AS game_date) FROM {BOX} "
                                                     f"WHERE game_date = @d AND player_id < 3", params={"d": day, "nxt": nxt})
        wh.append(HIST, pd.DataFrame([{"run_id": run_id, "stage": "derive", "phase": "3", "processor": "copy",
                                       "data_date": day, "attempt": 1, "success": True, "rows_written": copied,
                                       "started_at": datetime(2024, 5, 1, 1, 2, 3)}]))


def backfill(wh, days=DAYS) -> dict:
    for day in days:
        backfill_chunk(wh, day)
    return wh.checksums([BOX, HIST])


@pytest.fixture(scope="module")
def clean(server):
    with make_wh(server, "_clean") as wh:
        return backfill(wh)


def test_a_second_runner_on_another_host_is_refused_with_the_holders_name(server):
    with make_wh(server, "_two") as a, make_wh(server, "_two") as b:
        first = Lease(a, "run-a", holder="ana", host="host-a", clock=lambda: T0).acquire()
        with pytest.raises(LeaseHeldError, match=r"locked by ana on host-a \(run run-a") as e:
            Lease(b, "run-b", holder="ben", host="host-b", clock=lambda: T0 + timedelta(minutes=5)).acquire()
        assert e.value.holder.run_id == "run-a"
        first.release()
        second = Lease(b, "run-b", holder="ben", host="host-b", clock=lambda: T0 + timedelta(minutes=6)).acquire()
        assert second.current().holder == "ben"
        second.release()
        assert second.current() is None


def test_an_expired_lease_is_taken_over_and_its_holder_stops(server):
    with make_wh(server, "_exp") as a, make_wh(server, "_exp") as b:
        dead = Lease(a, "run-a", holder="ana", host="host-a", clock=lambda: T0).acquire()
        later = T0 + timedelta(minutes=16)  # past the 15 minute TTL without a heartbeat
        taker = Lease(b, "run-b", holder="ben", host="host-b", clock=lambda: later).acquire()
        assert taker.taken_over is not None and taker.taken_over.holder == "ana"
        dead.clock = lambda: later
        with pytest.raises(LeaseHeldError, match="run-a lost the warehouse lease.*taken by ben on host-b"):
            dead.heartbeat()
        held = unlock(b)  # `runbook unlock --force` on BigQuery
        assert held.holder == "ben" and taker.current() is None


def test_every_transaction_records_its_session_in_the_lease(server):
    with make_wh(server, "_sess") as wh:
        lease = wh.lease = Lease(wh, "run-1", holder="ana", host="host-a").acquire()
        with wh.transaction():
            wh.replace_range(BOX, DAYS[0], DAYS[0], frame=box_rows(DAYS[0], 2))
            assert lease.current().session_id == wh._tx.session_id
        lease.release()


def test_a_stage_kernel_heartbeats_the_lease_its_driver_holds(server, monkeypatch):
    with make_wh(server, "_kern") as driver:
        lease = Lease(driver, "run-k", holder="ana", host="host-a").acquire()
        monkeypatch.setenv("RUNBOOK_LEASE_RUN_ID", "run-k")
        with make_wh(server, "_kern", run_id="run-k") as kernel:
            kernel.lease.holder, kernel.lease.host = "ana", "host-a"
            with kernel.transaction():
                kernel.replace_range(BOX, DAYS[0], DAYS[0], frame=box_rows(DAYS[0], 2))
                assert lease.current().session_id == kernel._tx.session_id
        lease.release()


def test_a_crash_mid_transaction_then_resume_gives_the_clean_tables(server, clean):
    crashed = make_wh(server, "_crash")
    crashed.lease = Lease(crashed, "run-1", holder="ana", host="host-a").acquire()
    backfill_chunk(crashed, DAYS[0])
    # the process dies inside the next chunk's transaction: no COMMIT, no ROLLBACK, session left open
    tx = crashed.transaction()
    tx.__enter__()
    crashed.replace_range(BOX, DAYS[1], DAYS[1], frame=box_rows(DAYS[1], 1))
    # a read inside the transaction sends the deferred write with it: the session is now open
    assert crashed.query(f"SELECT COUNT(*) AS n FROM {BOX} WHERE game_date = @d", {"d": DAYS[1]}).n[0] == 1
    left_open = crashed._tx.session_id
    assert left_open in server.engine.sessions and server.engine.sessions[left_open].in_tx
    crashed._client = None  # dropped, never closed

    with make_wh(server, "_crash") as wh:
        wh.lease = Lease(wh, "run-1", holder="ana", host="host-a").acquire()  # the resume: same run
        assert wh.aborted_sessions == [left_open] and left_open not in server.engine.sessions
        assert backfill(wh, DAYS[1:]) == clean  # resumes at the chunk that did not commit
        wh.lease.release()
    tx.gen.close()  # the dead process's transaction object, dropped now rather than by the garbage collector later


def test_injected_transient_errors_are_retried_with_the_same_tables(server, clean):
    # a rate limit on a session's BEGIN, a concurrent-update abort of an INSERT inside an open
    # session transaction (the transaction is replayed), one at COMMIT, and one on the history insert
    server.inject("rateLimitExceeded", times=1, match="BEGIN TRANSACTION")
    server.inject("concurrentUpdate", times=1, match="player_id < 3")
    server.inject("concurrentUpdate", times=1, match="COMMIT TRANSACTION")
    server.inject("rateLimitExceeded", times=2, match="processor_run_history")
    before = server.job_counts()["injected"]
    with make_wh(server, "_flaky") as wh:
        assert backfill(wh) == clean
        reasons = sorted(r["reason"] for r in wh.retries)
        assert reasons == ["concurrentUpdate", "concurrentUpdate", "rateLimitExceeded", "rateLimitExceeded",
                           "rateLimitExceeded"]
        assert any(r["replayed"] > 0 for r in wh.retries)  # the DELETE's transaction was replayed
        assert wh.job_summary()["retries"] == wh.retries
    assert server.job_counts()["injected"] - before == 5


def test_retries_are_bounded(server):
    server.inject("rateLimitExceeded", times=10, match="nba_raw_bound")
    with make_wh(server, "_bound") as wh:
        with pytest.raises(bqmod.WarehouseError, match=r"after 4 attempts \(rateLimitExceeded\)"):
            wh.query(f"SELECT COUNT(*) AS n FROM {BOX} WHERE game_date = @d", {"d": DAYS[0]})
    server.engine.faults.clear()
