"""Pipelined commits on BigQuery: a chunk's COMMIT rides at the head of the next chunk's first
job, so N chunks cost N jobs instead of 2N, and nothing about what commits changes.

Each test runs the same small "backfill" as ``test_bigquery_lease.py`` (one chunk per day:
replace a day from a frame, replace the next day from SQL reading it, append a history row)
through ``run_chunks``, the runner derive, predict and grade use, on the loopback server."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

import bq_chunks
from bq_chunks import BOX, HIST, box_rows
from bqserver import BigQueryLoopback
from nbcore.stage_run import ChunkContext, ChunkedResult, ChunkWork, run_chunks
from nbcore.warehouse import bigquery as bqmod

pytestmark = pytest.mark.zetasql  # the loopback BigQuery server: every statement analyzed by ZetaSQL (make test only)

PROJECT = "pipe-proj"
DAYS = [date(2024, 1, 2) + timedelta(days=2 * i) for i in range(4)]
CARRIED = "COMMIT TRANSACTION;\nBEGIN TRANSACTION"  # text of a job carrying an earlier chunk's COMMIT


@pytest.fixture(scope="module")
def server():
    with BigQueryLoopback(min_bytes_per_table=0) as srv:
        yield srv


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(bqmod, "RETRY_DELAYS", (0.01, 0.02, 0.04))


def make_wh(server, suffix: str, run_id: str = "run-1"):
    return bq_chunks.make_wh(server, PROJECT, suffix, run_id)


def chunk_body(wh, broken_day: date | None = None):
    """A derive-like chunk: two writes, the second reading the first inside the transaction."""
    def body(ctx: ChunkContext) -> ChunkWork:
        day = ctx.dates[0]
        nxt = day + timedelta(days=1)
        wh.replace_range(BOX, day, day, frame=box_rows(day, 5))
        # a key column NULL fails at run time (REQUIRED), after the statements before it ran
        game_id = "CAST(NULL AS STRING)" if day == broken_day else "game_id"
        copied = wh.replace_range(BOX, nxt, nxt, sql=f"SELECT * REPLACE (@nxt AS game_date, {game_id} AS game_id) "
                                                     f"FROM {BOX} WHERE game_date = @d AND player_id < 3",
                                  params={"d": day, "nxt": nxt})
        # a change-only write whose counts are known only once its (carried) COMMIT was sent
        bumped = wh.write_changes(BOX, nxt, nxt, sql=f"SELECT * REPLACE (@nxt AS game_date, points + 1 AS points) "
                                                     f"FROM {BOX} WHERE game_date = @d AND player_id < 3",
                                  params={"d": day, "nxt": nxt})
        return ChunkWork(history=[("copy", "3", day, copied)], written={BOX: bumped})
    return body


def run(wh, broken_day: date | None = None) -> ChunkedResult:
    result = ChunkedResult(run_id="run-1")
    run_chunks(wh, stage="derive", run_id="run-1", chunks=[[d] for d in DAYS], body=chunk_body(wh, broken_day),
               record=result, processor="copy", phase="3", progress=False)
    return result


def box_days(wh) -> list[date]:
    frame = wh.query(f"SELECT DISTINCT game_date FROM {BOX} WHERE game_date >= @d ORDER BY game_date",
                     {"d": DAYS[0]})
    return list(pd.to_datetime(frame.game_date).dt.date)


def statuses(result: ChunkedResult) -> list[str]:
    return [c.status for c in result.chunks]


@pytest.fixture(scope="module")
def clean(server):
    """The tables one transaction per chunk, each committed on its own job, give."""
    with make_wh(server, "_eager") as wh:
        for day in DAYS:
            with wh.transaction():
                work = chunk_body(wh)(ChunkContext([day], "copy", "3"))
                wh.append(HIST, pd.DataFrame([{"run_id": "run-1", "stage": "derive", "phase": "3", "processor": "copy",
                                               "data_date": day, "attempt": 1, "success": True,
                                               "rows_written": work.history[0][3],
                                               "started_at": datetime(2024, 5, 1)}]))
        return wh.checksums([BOX])


def test_each_chunk_costs_one_job_and_the_tables_are_the_same(server, clean):
    with make_wh(server, "_pipe") as wh:
        before = len(wh.jobs)
        result = run(wh)
        jobs = [j for j in wh.jobs[before:] if j["step"] not in ("history/run_attempts",)]
        assert statuses(result) == ["succeeded"] * 4
        # one job per chunk (its writes, with the previous chunk's COMMIT at its head) + the last COMMIT
        assert len(jobs) == len(DAYS) + 1, [j["step"] for j in jobs]
        assert [j["step"] for j in jobs].count("commit transaction") == 1
        assert wh.checksums([BOX]) == clean
        assert [c.rows for c in result.chunks] == [3] * 4  # counts settled from the jobs that carried them
        assert result.rows_deleted == {BOX: 12}
        hist = wh.query(f"SELECT data_date, rows_written FROM {HIST} WHERE run_id = 'run-1' AND success "
                        f"AND data_date >= @d ORDER BY data_date", {"d": DAYS[0]})
        assert list(hist.rows_written) == [3] * 4


def test_a_carried_commit_that_fails_is_the_failure_of_its_own_chunk(server):
    server.inject("invalidQuery", times=1, match=CARRIED)  # the job carrying chunk 1's COMMIT
    with make_wh(server, "_carryfail") as wh:
        result = run(wh)
        assert statuses(result) == ["failed", "not_run", "not_run", "not_run"]
        assert result.chunks[0].first == DAYS[0] and "injected failure" in result.reason
        assert box_days(wh) == []  # chunk 1 did not commit, chunk 2 never began
        failed = wh.query(f"SELECT data_date FROM {HIST} WHERE run_id = 'run-1' AND NOT success AND data_date >= @d",
                          {"d": DAYS[0]})
        assert list(pd.to_datetime(failed.data_date).dt.date) == [DAYS[0]]


def test_a_failure_after_the_carried_commit_is_the_next_chunks(server):
    with make_wh(server, "_nextfail") as wh:
        result = run(wh, broken_day=DAYS[1])
        # chunk 1's COMMIT ran at the head of chunk 2's job; chunk 2's own statement failed
        assert statuses(result) == ["succeeded", "failed", "not_run", "not_run"]
        assert result.chunks[1].first == DAYS[1]
        assert box_days(wh) == [DAYS[0], DAYS[0] + timedelta(days=1)]
        assert result.rows_written == {BOX: 3}  # chunk 1's counts, settled from the job that carried it
        ok = wh.query(f"SELECT data_date FROM {HIST} WHERE run_id = 'run-1' AND success AND data_date >= @d",
                      {"d": DAYS[0]})
        assert list(pd.to_datetime(ok.data_date).dt.date) == [DAYS[0]]


def test_a_transient_error_on_a_carrying_job_commits_each_chunk_once(server, clean):
    server.inject("concurrentUpdate", times=1, match=CARRIED)
    with make_wh(server, "_carryflaky") as wh:
        result = run(wh)
        assert statuses(result) == ["succeeded"] * 4
        assert [r["reason"] for r in wh.retries] == ["concurrentUpdate"]
        assert wh.checksums([BOX]) == clean
        n = wh.query(f"SELECT COUNT(*) AS n FROM {HIST} WHERE run_id = 'run-1' AND data_date >= @d", {"d": DAYS[0]})
        assert int(n.n[0]) == len(DAYS)  # no chunk's history written twice


def test_carried_commits_past_the_request_size_are_sent_at_once(server, clean, monkeypatch):
    monkeypatch.setattr(bqmod, "CARRY_PARAM_BYTES", 0)  # every commit is over it: sent as it is made
    with make_wh(server, "_capped") as wh:
        before = len(wh.jobs)
        result = run(wh)
        steps = [j["step"] for j in wh.jobs[before:]]
        assert statuses(result) == ["succeeded"] * 4
        assert steps.count("commit transaction") == len(DAYS)  # one COMMIT job per chunk, as without pipelining
        assert wh.checksums([BOX]) == clean
    server.inject("invalidQuery", times=1, match="COMMIT TRANSACTION")  # chunk 1's own COMMIT job
    with make_wh(server, "_capfail") as wh:
        result = run(wh)
        assert statuses(result) == ["failed", "not_run", "not_run", "not_run"]
        assert box_days(wh) == []
