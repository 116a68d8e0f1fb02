"""The stage runner: how derive, predict and grade execute their chunks, and how any writing
stage run by hand (a notebook in JupyterLab, a CLI command) takes the lock and leaves an archive.

One loop for every chunked stage (``run_chunks``), so they behave alike:

* a progress bar (``nbcore.progress.tqdm``: quiet inside the runbook's kernels);
* one transaction per chunk: the chunk's body writes its tables and lineage, and the runner
  adds one ``processor_run_history`` row per processor and date *in the same transaction*,
  with the attempt number counted from the run's earlier rows;
* stop at the first failure: the failing chunk rolls back, one failed history row per date is
  written for the processor that was running (``ChunkContext.at``), later chunks are recorded
  as ``not_run``, and the stage's record says ``failed`` with the reason;
* one ``ChunkRecord`` type (``nbcore.record``) in every stage's record.

``stage_session`` is what makes a stage safe to run outside the driver: when no archive is
given and the process is not one of the driver's kernels, it creates an archive
(``runs/<timestamp>-<run_name>-<stage>``, manifest ``kind: interactive``), takes the
single-writer lock for the stage's duration (refused, exit 4, while a run holds it), and
records the outcome, so the next run's report can credit what was done by hand.
"""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Callable, Iterator, Optional, Protocol

import pandas as pd

from . import profiling
from .archive import RunArchive, unique_run_id, utcnow
from .errors import StageFailed
from .history import RunRecord, record_runs
from .params import RunParams
from .progress import RUN_ENV, tqdm
from .record import ChunkRecord
from .runlog import stage_log, stop_requested
from .warehouse import Warehouse
from .warehouse.base import CommitFailed, WriteCount


class ChunkedOutcome(Protocol):
    """What ``run_chunks`` fills in: a stage's result with the record envelope's fields."""

    status: str
    reason: Optional[str]
    chunks: list[ChunkRecord]
    rows_written: dict[str, int]
    rows_deleted: dict[str, int]


@dataclass(repr=False)
class ChunkedResult:
    """The result of a chunked stage over whole dates (predict, grade): the dates to do, the
    chunks as run, rows per table, and where it stopped. Stages subclass it with their own fields."""

    run_id: str
    status: str = "succeeded"
    reason: Optional[str] = None
    dates: list[date] = field(default_factory=list)
    chunks: list[ChunkRecord] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)  # table -> rows inserted (new or changed)
    rows_deleted: dict[str, int] = field(default_factory=dict)  # table -> rows replaced (changed) or removed
    seconds: float = 0.0
    error: Optional[str] = None
    failed_chunk: Optional[dict] = None

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "skipped")

    def stopped(self, stage: str, processor: str, failure: "ChunkFailure") -> None:
        """Say where the stage stopped (after ``run_chunks`` returned a failure)."""
        c = failure.chunk
        self.error = self.reason = f"{stage} failed for {c[0]}..{c[-1]}: {failure.message}"
        self.failed_chunk = {"start": c[0].isoformat(), "end": c[-1].isoformat(), "processor": processor}


class ChunkedStageFailed(StageFailed):
    """A chunk failed; the stage stopped there. ``result`` holds what was done before it."""

    def __init__(self, message: str, result, stage: str):
        super().__init__(message, stage=stage, record=result.summary())
        self.result = result


@dataclass
class ChunkWork:
    """What a chunk's body did: history rows to record and rows written per table."""

    history: list[tuple[str, str, date, int]] = field(default_factory=list)  # (processor, phase, date, rows)
    # table -> the write's counts; read only after the commit (on BigQuery a queued write's
    # counts are free once its script ran, and reading them earlier would send it early)
    written: dict[str, WriteCount] = field(default_factory=dict)
    detail: dict[str, int] = field(default_factory=dict)  # stage-specific counts for the ChunkRecord
    on_commit: Optional[Callable[[], None]] = None  # run once the chunk's transaction committed


@dataclass
class ChunkContext:
    """Handed to a chunk's body: the chunk's dates, and which processor is running now (a
    failure is attributed to it in ``processor_run_history``)."""

    dates: list[date]
    processor: str
    phase: str
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def at(self, processor: str, phase: Optional[str] = None) -> None:
        self.processor = processor
        if phase is not None:
            self.phase = phase


@dataclass
class ChunkFailure:
    """Where a chunked stage stopped."""

    chunk: list[date]
    processor: str
    message: str
    error: BaseException


def existing_attempts(wh: Warehouse, run_id: str) -> dict[tuple[str, date], int]:
    """(processor, date) -> attempts already recorded for this run (a resumed run counts on)."""
    with profiling.part("history"):
        att = wh.query_file("history/run_attempts", {"run_id": run_id})
    return {(r.processor, pd.Timestamp(r.data_date).date()): int(r.attempts) for r in att.itertuples(index=False)}


def run_chunks(
    wh: Warehouse,
    *,
    stage: str,
    run_id: str,
    chunks: list[list[date]],
    body: Callable[[ChunkContext], ChunkWork],
    record: ChunkedOutcome,
    processor: str,
    phase: str,
    progress: bool = True,
    describe_failure: Callable[[ChunkContext, BaseException], str] | None = None,
    on_outcome: Callable[[list[date], str], None] | None = None,
) -> Optional[ChunkFailure]:
    """Run ``body`` for each chunk, in order, one transaction each; stop at the first failure.

    ``record`` (the stage's typed record) gets one ``ChunkRecord`` per chunk and its
    ``rows_written`` / ``rows_deleted`` summed; on failure its ``status`` is ``failed`` and
    ``reason`` says where. ``processor``/``phase`` name what a failure is attributed to until the
    body says otherwise (``ctx.at``). Returns the failure, or None when every chunk succeeded.

    Commits are pipelined (``Warehouse.pipelined``): on BigQuery a chunk's COMMIT rides with the
    next chunk's first job, so a chunk is *settled* (its counts read, ``on_commit`` run, its
    record written) once the backend confirmed it; a carried commit that fails is that chunk's
    failure (``CommitFailed``), and the chunks after it are ``not_run``. On DuckDB every commit
    is confirmed at once.

    ``on_outcome(chunk, status)`` is called as each chunk settles (``succeeded``) or fails
    (``failed``): the run archive's ``chunks.jsonl`` (``nbcore.program.record_outcome``).

    Inside a driver's kernel, a stop request (``nbcore.runlog``: the driver got SIGINT, SIGTERM or
    SIGHUP) is looked for before each chunk: the chunks committed so far are settled, the rest
    are ``not_run``, ``record.status`` is ``interrupted`` and the runner returns None (the stage
    then raises ``RunInterrupted``, after writing its record). Each chunk's start and end go to
    the run's ``run.log``.
    """
    attempts = existing_attempts(wh, run_id)
    n_chunks = len(chunks)
    stage_log(stage, f"{n_chunks} chunk(s) to run")
    bar = tqdm(chunks, desc=stage, unit="chunk", disable=not progress or not chunks)
    waiting: list[_Committed] = []  # committed in Python, not confirmed by the backend yet

    def settle(n: int) -> None:
        for done in waiting[:n]:
            _settled(done, record, attempts)
            c = record.chunks[-1]
            stage_log(stage, f"chunk {len(record.chunks)}/{n_chunks} {c.first}..{c.last} succeeded: "
                             f"{c.rows:,} rows in {c.seconds:.1f} s")
            if on_outcome is not None:
                on_outcome(done.ctx.dates, "succeeded")
        del waiting[:n]

    def stop(i: int, ctx: ChunkContext, e: BaseException, t: float) -> ChunkFailure:
        """Chunk ``ctx`` failed; the chunks waiting after it and ``chunks[i:]`` did not run."""
        message = describe_failure(ctx, e) if describe_failure else f"{type(e).__name__}: {e}"
        _record_failure(wh, stage, run_id, ctx, message, attempts, t)
        chunk = ctx.dates
        if on_outcome is not None:
            on_outcome(list(chunk), "failed")
        record.status = "failed"
        record.reason = f"{stage} stopped at {chunk[0]}..{chunk[-1]} in {ctx.processor}: {message}"
        record.chunks.append(ChunkRecord(first=chunk[0], last=chunk[-1], dates=list(chunk), status="failed",
                                         seconds=round(time.perf_counter() - t, 3), error=message))
        stage_log(stage, f"chunk {len(record.chunks)}/{n_chunks} {chunk[0]}..{chunk[-1]} failed: {message}")
        for later in [w.ctx.dates for w in waiting] + [list(c) for c in chunks[i:]]:
            record.chunks.append(ChunkRecord(first=later[0], last=later[-1], dates=list(later), status="not_run"))
        waiting.clear()
        return ChunkFailure(list(chunk), ctx.processor, message, e)

    def interrupted(i: int, signal_name: str) -> None:
        """A stop request before ``chunks[i]``: every chunk from there is ``not_run``."""
        done = sum(c.status == "succeeded" for c in record.chunks)
        nxt = chunks[i]
        record.status = "interrupted"
        record.reason = (f"{stage} interrupted by {signal_name} before chunk {nxt[0]}..{nxt[-1]} "
                         f"({done} of {n_chunks} chunks done)")
        for later in chunks[i:]:
            record.chunks.append(ChunkRecord(first=later[0], last=later[-1], dates=list(later), status="not_run"))
        stage_log(stage, record.reason)
        return None

    def confirm(i: int) -> Optional[ChunkFailure]:
        """Send what is carried; a carried commit that fails stops the stage at its chunk."""
        try:
            wh.flush_commits()
        except CommitFailed as cf:
            settle(cf.committed)
            failed = waiting.pop(0)
            return stop(i, failed.ctx, cf, failed.started)
        settle(len(waiting))
        return None

    try:
        with wh.pipelined():
            for i, chunk in enumerate(bar):
                signal_name = stop_requested()
                if signal_name is not None:  # settle what committed; the rest does not run
                    return confirm(i) or interrupted(i, signal_name)
                bar.set_postfix_str(f"{chunk[0]}..{chunk[-1]}")
                stage_log(stage, f"chunk {i + 1}/{n_chunks} {chunk[0]}..{chunk[-1]} started")
                ctx = ChunkContext(list(chunk), processor, phase)
                t = time.perf_counter()
                try:
                    with wh.transaction():
                        work = body(ctx)
                        ctx.at("(run history)")
                        finished = datetime.now(timezone.utc)
                        seconds = time.perf_counter() - t
                        record_runs(wh, [
                            RunRecord(run_id=run_id, stage=stage, phase=ph, processor=proc, data_date=d, success=True,
                                      rows_written=int(rows), attempt=attempts.get((proc, d), 0) + 1,
                                      started_at=ctx.started, finished_at=finished,
                                      seconds=seconds / max(1, len(chunk)))
                            for proc, ph, d, rows in work.history
                        ])
                except CommitFailed as cf:  # a carried commit: an earlier chunk's, or this one's (sent at once)
                    settle(cf.committed)
                    if not waiting:
                        return stop(i + 1, ctx, cf, t)
                    failed = waiting.pop(0)
                    return stop(i, failed.ctx, cf, failed.started)
                except Exception as e:  # noqa: BLE001 - any failure stops the stage; the chunk rolled back
                    return confirm(i) or stop(i + 1, ctx, e, t)
                waiting.append(_Committed(ctx, work, t, time.perf_counter() - t))
                settle(len(waiting) - wh.pending_commits())
            return confirm(len(chunks))
    finally:
        bar.close()


@dataclass
class _Committed:
    """A chunk whose transaction committed in Python (``ctx``, what ``body`` did, when it began)."""

    ctx: ChunkContext
    work: ChunkWork
    started: float
    seconds: float


def _settled(done: _Committed, record: ChunkedOutcome, attempts: dict) -> None:
    """A chunk's commit is confirmed: its callback, attempts, row counts and record."""
    work, chunk = done.work, done.ctx.dates
    if work.on_commit is not None:
        work.on_commit()
    for proc, _, d, _ in work.history:
        attempts[(proc, d)] = attempts.get((proc, d), 0) + 1
    inserted = {table: int(w.inserted) for table, w in work.written.items()}
    for table, w in work.written.items():
        record.rows_written[table] = record.rows_written.get(table, 0) + inserted[table]
        record.rows_deleted[table] = record.rows_deleted.get(table, 0) + int(w.deleted)
    record.chunks.append(ChunkRecord(first=chunk[0], last=chunk[-1], dates=list(chunk), status="succeeded",
                                     rows=sum(inserted.values()),
                                     seconds=round(done.seconds, 3), detail=dict(work.detail)))


def _record_failure(wh: Warehouse, stage: str, run_id: str, ctx: ChunkContext, message: str,
                    attempts: dict, t: float) -> None:
    """One failed history row per date of the chunk, for the processor that was running."""
    try:
        record_runs(wh, [
            RunRecord(run_id=run_id, stage=stage, phase=ctx.phase, processor=ctx.processor, data_date=d,
                      success=False, error=message[:2000], attempt=attempts.get((ctx.processor, d), 0) + 1,
                      started_at=ctx.started, seconds=(time.perf_counter() - t) / max(1, len(ctx.dates)))
            for d in ctx.dates
        ])
        for d in ctx.dates:
            attempts[(ctx.processor, d)] = attempts.get((ctx.processor, d), 0) + 1
    except Exception:  # noqa: BLE001 - the original failure is what matters
        pass


# -- stages run by hand --------------------------------------------------------------------------
def in_driver_kernel() -> bool:
    """True inside a kernel the runbook driver started: the driver holds the lock and the archive."""
    return bool(os.environ.get(RUN_ENV))


@contextmanager
def stage_session(params: RunParams, stage: str, archive: Optional[RunArchive]) -> Iterator[Optional[RunArchive]]:
    """The archive a writing stage records into, with the single-writer lock held.

    Inside the driver (an archive is given, or this is one of its kernels) nothing changes: the
    driver holds the lock. Run by hand, the stage gets its own archive and takes the lock; the
    lock is refused (``RunLockedError``, exit 4) while a run holds the warehouse.
    """
    if archive is not None or in_driver_kernel():
        yield archive
        return
    from .lock import WarehouseLock, lock_path, read_lock

    run_id = unique_run_id(params.archive_dir, params.run_name, stage)
    held = read_lock(lock_path(params))
    # this process may hold it already (a CLI command takes it around the stage): no second acquire
    lock = None if held is not None and held.pid == os.getpid() else WarehouseLock(params, run_id)
    if lock is not None:
        lock.acquire()
    try:
        archive = RunArchive.create(params, run_id)
        with _interactive_manifest(archive, params, stage):
            yield archive
    finally:
        if lock is not None:
            lock.release()


@contextmanager
def _interactive_manifest(archive: RunArchive, params: RunParams, stage: str) -> Iterator[None]:
    """A one-stage manifest (``kind: interactive``) that ends ``succeeded`` or ``failed``."""
    entry = {"name": stage, "stage": stage, "notebook": None, "status": "running", "started_at": utcnow(),
             "ended_at": None, "seconds": None, "error": None, "record": None}
    manifest = {"run_id": archive.run_id, "run_name": params.run_name, "run_dir": str(archive.path),
                "kind": "interactive", "status": "running", "exit_code": None, "started_at": entry["started_at"],
                "ended_at": None, "params": params.public_dict(), "backend": params.backend,
                "host": socket.gethostname(), "pid": os.getpid(), "stages": [entry]}
    archive.write_manifest(manifest)
    t = time.perf_counter()
    status, error = "succeeded", None
    try:
        yield
    except BaseException as e:
        status, error = "failed", f"{type(e).__name__}: {e}"
        raise
    finally:
        rec = archive.stage_record(stage)
        if isinstance(rec, dict):
            entry["record"] = rec
            if rec.get("status") == "failed":
                status, error = "failed", error or rec.get("reason")
            elif rec.get("status") == "skipped" and status == "succeeded":
                status = "skipped"
        entry.update(status=status, error=error, ended_at=utcnow(), seconds=round(time.perf_counter() - t, 3))
        manifest.update(status=status, exit_code=0 if status != "failed" else 1, ended_at=entry["ended_at"],
                        reason=error, rows_written=dict(entry["record"]["rows_written"]) if entry["record"] else {})
        archive.write_manifest(manifest)
