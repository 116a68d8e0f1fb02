"""The BigQuery backend: the same interface as DuckDB, run as BigQuery jobs.

SQL arrives as BigQuery Standard SQL naming tables ``dataset.table``; every statement is
qualified with the project and the run's ``dataset_suffix`` (``nbcore.sqlfiles.qualify_tables``)
and runs as a query job with named ``QueryJobConfig`` parameters, job labels (app, run id,
stage, step) and the run's ``maximum_bytes_billed``. Every job is recorded in ``wh.jobs``
(job id, stage, statement type, bytes processed and billed, rows) for the run manifest.

**Writes are atomic, and cost no job of their own.** A ``replace_range`` outside
``transaction()`` is one multi-statement script ``BEGIN TRANSACTION; DELETE ...; INSERT ...;
COMMIT TRANSACTION``. Inside ``with wh.transaction():`` writes are queued and sent with the
transaction's next job: the next read inside it (one script, the queued DML then the
``SELECT``, whose rows are the script's result; so the read sees the writes, exactly as on
DuckDB, which derive and grade rely on) or the ``COMMIT``. The first job opens a BigQuery
*session* with ``BEGIN TRANSACTION`` in the same script; a transaction that reads nothing is
one script and needs no session. Row counts come from the script's child jobs
(``DeferredCount``: reading one before its job ran sends the queue). ``ROLLBACK TRANSACTION``
on an exception, so a failed chunk leaves nothing. The session is kept after a commit and the
next transaction begins in it (one session per stage, recorded once in the lease). Inside
``pipelined()`` (the chunk runner) a transaction's ``COMMIT`` is not sent at once: it rides at
the head of the next job, and ``CommitFailed`` says when a carried commit failed there. Each job is about a second of latency on
BigQuery whatever its size, which is why round trips, not bytes, are what this saves.

**DataFrames in.** A frame is loaded with pandas-gbq (``to_gbq`` into a staging table that
expires after a day, then ``INSERT ... SELECT`` inside the transaction) when no transaction
is open yet. A transaction reads a snapshot taken when it begins, so a frame that arrives
after ``BEGIN`` (the run-history rows a stage appends after its writes) is inserted from an
``ARRAY<STRUCT>`` query parameter in the session, in chunks, instead of a staging table
created mid-transaction. ``append`` outside a transaction is a plain pandas-gbq load job.

**DataFrames out.** Query results come back through google-cloud-bigquery's
``RowIterator.to_arrow`` (the same download path ``pandas_gbq.read_gbq`` uses internally)
rather than ``read_gbq`` itself, because ``read_gbq`` returns only the frame, and the job
(its id and bytes billed for the manifest, its error reason for the bytes-cap message) is
needed. Frames are typed like DuckDB's (nullable ints become ``Int64``, dates
``datetime64``), so stages cannot tell the backends apart.

**Cost control.** ``dry_run_bytes(sql, params)`` asks BigQuery what a statement would
scan (``runbook plan`` uses it); a job over ``maximum_bytes_billed`` fails with a
``BytesBilledLimitError`` naming the stage, the tables and the bytes. Tables are created
from ``nbcore.schema``, partitioned by day on the date column, clustered as defined, and
``require_partition_filter`` where the schema says so (the big raw tables), so a query that
forgets its date filter fails instead of scanning a table's whole history.
"""
from __future__ import annotations

from ..errors import RunbookError

import os
import re
import threading
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp

from .. import schema
from ..sqlfiles import parameter_names, qualify_tables
from .base import CommitFailed, Warehouse, WarehouseError, WriteCount, change_statements, conform_frame

if TYPE_CHECKING:  # pragma: no cover
    from ..params import RunParams

APP_LABEL = "backfill-runbook"
from ..stages import PHASE_STAGE, STAGE_NAMES as STAGES  # the registry
STAGING_PREFIX = "_staging_"
STAGING_TTL = timedelta(days=1)
STRUCT_PARAM_BYTES = 2_000_000  # per INSERT job when rows travel as an ARRAY<STRUCT> parameter
# parameters of committed transactions carried to the next job (pipelined()): past this they are
# sent at once, so a job stays well under BigQuery's 10 MB request limit
CARRY_PARAM_BYTES = 6_000_000
_LABEL_BAD = re.compile(r"[^a-z0-9_-]+")
_DML = (exp.Insert, exp.Delete, exp.Update, exp.Merge)


class BytesBilledLimitError(WarehouseError):
    """A job would bill more than ``maximum_bytes_billed``: says which stage, tables and bytes."""

    def __init__(self, message: str, *, stage: str, tables: list[str], bytes_billed: Optional[int],
                 bytes_processed: Optional[int], cap: Optional[int]):
        super().__init__(message)
        self.stage, self.tables = stage, tables
        self.bytes_billed, self.bytes_processed, self.cap = bytes_billed, bytes_processed, cap


def label_value(value: Any) -> str:
    """BigQuery label values: lowercase letters, digits, ``_`` and ``-``, at most 63 characters."""
    return _LABEL_BAD.sub("_", str(value).lower()).strip("_")[:63] or "none"


def is_loopback(endpoint: Optional[str]) -> bool:
    host = urlsplit(endpoint).hostname if endpoint else None
    return host in ("127.0.0.1", "localhost", "::1")


def human_bytes(n: Optional[int]) -> str:
    if n is None:
        return "? bytes"
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n:,} bytes ({n / size:.1f} {unit})"
    return f"{n:,} bytes"


LEASE_ENV = "RUNBOOK_LEASE_RUN_ID"  # set by the driver holding the lease, for its stage kernels
_TX_LABELS = frozenset({"begin transaction", "commit transaction", "rollback transaction", "end session",
                        "insert rows"})
TRANSIENT_REASONS = frozenset({"rateLimitExceeded", "concurrentUpdate", "backendError", "internalError",
                               "jobBackendError", "jobInternalError"})
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds; five retries, about half a minute at most
# a ROLLBACK or a session's end is cleanup after a failure (or a transaction dropped by the
# garbage collector): it gives up after this long instead of the client's 10 minute default,
# and BigQuery ends an abandoned session on its own
_CLEANUP_LABELS = frozenset({"rollback transaction", "end session"})
CLEANUP_DEADLINE_S = 20.0


def is_transient(reason: str, message: str) -> bool:
    """Worth retrying: BigQuery's rate limits, backend errors, and DML aborted by a concurrent
    update (reported by some paths as ``invalidQuery`` with that message)."""
    return reason in TRANSIENT_REASONS or "concurrent update" in message.lower()


class _TransientError(RunbookError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class DeferredCount(WriteCount):
    """The rows a deferred write will have inserted and deleted: known once the script that
    carries it ran (the next read in the transaction, or its COMMIT). Reading a figure before
    that sends the deferred statements at once (one job), so the figures are always exact."""

    __setattr__ = object.__setattr__  # WriteCount is frozen; this one fills in once its job ran

    def __init__(self, wh: "BigQueryWarehouse", label: str):
        self._wh, self._label = wh, label
        self._counts: Optional[dict[str, int]] = None
        self._dropped = False

    def _settle(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def _get(self) -> dict[str, int]:
        if self._counts is None:
            if self._dropped:
                raise WarehouseError(f"{self._label}: the write was rolled back, it has no row counts")
            self._wh._resolve(self)
        if self._counts is None:  # pragma: no cover - _resolve always settles or raises
            raise WarehouseError(f"{self._label}: the deferred write was not sent")
        return self._counts

    @property
    def inserted(self) -> int:  # type: ignore[override]
        return self._get().get("INSERT", 0)

    @property
    def deleted(self) -> int:  # type: ignore[override]
        return self._get().get("DELETE", 0)

    @property
    def changed_dates(self) -> frozenset:  # type: ignore[override]
        return frozenset()

    def settled(self) -> WriteCount:
        """A plain ``WriteCount`` of the same figures (sends the queue if not sent yet)."""
        return WriteCount(self.inserted, self.deleted)

    def __reduce__(self):  # copies and pickles (a frame's attrs are deep-copied) are plain counts
        return (WriteCount, (self.inserted, self.deleted))

    def __repr__(self) -> str:
        return (f"DeferredCount({self._label}: {self._counts})" if self._counts is not None
                else f"DeferredCount({self._label}: not sent yet)")


@dataclass
class _Pending:
    """A deferred statement group of an open transaction, sent with the transaction's next job."""

    text: str                # qualified BigQuery text (one or more statements), parameters renamed
    params: list             # its query parameters, names unique within the transaction
    label: str
    dml: int = 1             # DML statements in ``text``: which of the script's child jobs are its
    count: Optional[DeferredCount] = None


@dataclass
class _Tx:
    """An open ``transaction()``: its session (once BEGIN ran) and its staging tables."""

    session_id: Optional[str] = None
    staging: list[str] = field(default_factory=list)
    written: set[str] = field(default_factory=set)
    journal: list[dict] = field(default_factory=list)  # statements run in the session, for a replay
    pending: list[_Pending] = field(default_factory=list)  # deferred writes, sent with the next job
    stage: Optional[str] = None  # the stage of its first write, for its BEGIN/COMMIT jobs' labels

    @property
    def began(self) -> bool:
        return self.session_id is not None


@dataclass
class _Carried:
    """A transaction committed in Python whose last statements and ``COMMIT`` are not sent yet
    (``pipelined()``): they ride at the head of the warehouse's next job. ``script``: the whole
    transaction is still unsent (``BEGIN`` .. ``COMMIT``, no session); otherwise its session
    holds it open and only the tail is left."""

    tx: _Tx
    pending: list[_Pending]
    script: bool

    def texts(self) -> list[str]:
        body = [pend.text for pend in self.pending] + ["COMMIT TRANSACTION"]
        return (["BEGIN TRANSACTION"] + body) if self.script else body

    def params(self) -> list:
        return [q for pend in self.pending for q in pend.params]


class BigQueryWarehouse(Warehouse):
    name = "bigquery"
    # every transaction is a job or two (about a second each): a load writes a source's dates in
    # batches this big (a staging load and one script each; a season is about 165 dates)
    load_batch_dates = 400

    def __init__(
        self,
        project: str,
        *,
        location: str = "US",
        dataset_suffix: str = "",
        credentials: Any = None,
        api_endpoint: Optional[str] = None,
        maximum_bytes_billed: Optional[int] = None,
        max_plan_bytes: Optional[int] = None,
        client: Any = None,
        run_id: Optional[str] = None,
        stage: Optional[str] = None,
        read_only: bool = False,
        retry_delays: Optional[tuple[float, ...]] = None,
    ):
        self.project = check_identifier("project", project)
        self.location = location
        self.dataset_suffix = check_identifier("dataset_suffix", dataset_suffix or "")
        self.api_endpoint = api_endpoint
        self.maximum_bytes_billed = maximum_bytes_billed
        self.max_plan_bytes = max_plan_bytes
        self.read_only = read_only
        self.run_id = run_id or os.environ.get("RUNBOOK_RUN_ID") or "adhoc"
        self.stage = stage or os.environ.get("RUNBOOK_STAGE")
        self.jobs: list[dict] = []
        self._credentials = credentials
        self._client = client
        self._tx: Optional[_Tx] = None
        self._lock = threading.RLock()
        self.retry_delays: tuple[float, ...] = tuple(retry_delays if retry_delays is not None else RETRY_DELAYS)
        self.retries: list[dict] = []           # transient errors retried, for the manifest
        self.replayed_sessions: list[str] = []  # sessions abandoned and replayed after one
        self._replaying = False
        self.lease = None                       # a lease.Lease this warehouse heartbeats at each BEGIN
        if os.environ.get(LEASE_ENV) and not read_only:
            from .lease import Lease

            # a stage kernel of a run whose driver holds the lease: heartbeat it, record sessions
            self.lease = Lease.attached(self, os.environ[LEASE_ENV])
        self.aborted_sessions: list[str] = []
        self._session: Optional[str] = None     # the session transactions begin in (see _open_transaction)
        self._seq = 0                           # deferred statement groups so far (parameter renames)
        self._pipelined = False                 # commits ride with the next job (see pipelined())
        self._carry: list[_Carried] = []        # committed transactions not sent yet
        self._failed_job = None                 # the last job that failed (its child jobs say how far it got)
        self._carried_dml = 0                   # DML statements of carried transactions in the last _open_with job

    @classmethod
    def from_params(cls, params: "RunParams", **kwargs) -> "BigQueryWarehouse":
        """The backend ``params.bigquery`` describes (credentials: service-account file, else ADC)."""
        bq = params.bigquery
        if bq is None:
            raise WarehouseError("backend is bigquery but the 'bigquery:' section (project, ...) is missing")
        kwargs.setdefault("credentials", _credentials(bq.credentials_path, bq.api_endpoint))
        return cls(
            bq.project, location=bq.location, dataset_suffix=bq.dataset_suffix, api_endpoint=bq.api_endpoint,
            maximum_bytes_billed=bq.maximum_bytes_billed, max_plan_bytes=bq.max_plan_bytes, **kwargs,
        )

    # -- the client --------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            self._client = _make_client(self.project, self.location, self._credentials, self.api_endpoint)
        return self._client

    def close(self) -> None:
        if self._carry:
            self.flush_commits()
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
            self._client = None

    def dataset(self, name: str) -> str:
        """``nba_raw`` -> ``nba_raw<suffix>``."""
        return name + self.dataset_suffix

    def table_id(self, fqn: str) -> str:
        """``nba_raw.t`` -> ``project.nba_raw<suffix>.t``."""
        t = schema.table(fqn)
        return f"{self.project}.{self.dataset(t.dataset)}.{t.name}"

    def quoted(self, table_id: str) -> str:
        """A ``project.dataset.table`` id (``table_id``, a staging table) as statement text: ``quote_id``."""
        project, dataset, table = table_id.rsplit(".", 2)  # a legacy project id may hold a dot, the others cannot
        return quote_id(project, dataset, table)

    # -- labels and job bookkeeping --------------------------------------------------------
    def _stage_for(self, label: str) -> str:
        """The stage a job belongs to: given (``stage=`` or ``$RUNBOOK_STAGE``), else read off the job:
        a SQL file's folder (``derive/player_game_summary``), or the phase of the table written."""
        if self.stage:
            return self.stage
        if label in _TX_LABELS and self._tx is not None and self._tx.stage:
            return self._tx.stage  # a transaction's own jobs belong to the stage of its writes
        head = label.split("/", 1)[0] if "/" in label else ""
        if head in STAGES:
            return head
        m = re.match(r"^(replace|append|stage) ([a-z_]+\.[a-z_0-9]+)$", label)
        if m:
            try:
                return PHASE_STAGE.get(schema.table(m.group(2)).phase, "adhoc")
            except KeyError:
                pass
        return "adhoc"

    def _labels(self, label: str) -> dict[str, str]:
        return {
            "app": APP_LABEL,
            "run_id": label_value(self.run_id),
            "stage": label_value(self._stage_for(label)),
            "step": label_value(label or "query"),
        }

    def _record(self, job, kind: str, label: str, error: Optional[str] = None) -> dict:
        entry = {
            "job_id": job.job_id,
            "kind": kind,
            "stage": self._stage_for(label),
            "step": label,
            "labels": dict(job.labels or {}),
            "state": "FAILED" if error else "DONE",
        }
        if kind == "load":
            entry["rows"] = job.output_rows
            entry["destination"] = job.destination.table_id if job.destination is not None else None
        else:
            entry.update(
                statement_type=job.statement_type,
                bytes_processed=job.total_bytes_processed,
                bytes_billed=job.total_bytes_billed,
                rows=job.num_dml_affected_rows,
            )
        if error:
            entry["error"] = error
        self.jobs.append(entry)
        return entry

    def job_summary(self) -> dict:
        """What the run manifest shows: job count, ids and bytes, in total and per stage."""
        out: dict[str, Any] = {"jobs": 0, "bytes_processed": 0, "bytes_billed": 0, "by_stage": {}, "job_ids": []}
        for j in self.jobs:
            if j["kind"] == "dry_run":
                continue
            s = out["by_stage"].setdefault(j["stage"], {"jobs": 0, "bytes_processed": 0, "bytes_billed": 0})
            for d in (out, s):
                d["jobs"] += 1
                d["bytes_processed"] += int(j.get("bytes_processed") or 0)
                d["bytes_billed"] += int(j.get("bytes_billed") or 0)
            out["job_ids"].append(j["job_id"])
        if self.retries:
            out["retries"] = [dict(r) for r in self.retries]
        return out

    # -- SQL ----------------------------------------------------------------------------------
    def qualify(self, sql: str) -> str:
        """BigQuery text with every ``dataset.table`` as ``project.dataset<suffix>.table``."""
        return _qualify(sql, self.project, self.dataset_suffix)

    def _params(self, sql: str, params: Optional[Mapping[str, Any]], label: str, provided: frozenset = frozenset()) -> list:
        wanted = parameter_names(sql) - provided
        params = dict(params or {})
        missing = wanted - params.keys()
        if missing:
            raise WarehouseError(f"{label or 'query'}: missing query parameters {sorted(missing)}")
        return [to_query_parameter(k, params[k]) for k in sorted(wanted)]

    def _job_config(self, label: str, query_parameters: list, *, dry_run: bool = False, session: bool = True,
                    create_session: bool = False, session_id: Optional[str] = None):
        from google.cloud import bigquery

        cfg = bigquery.QueryJobConfig(
            query_parameters=query_parameters, labels=self._labels(label), use_legacy_sql=False, dry_run=dry_run,
        )
        if dry_run:
            cfg.use_query_cache = False
        elif self.maximum_bytes_billed:
            cfg.maximum_bytes_billed = int(self.maximum_bytes_billed)
        if create_session:
            cfg.create_session = True
        elif session_id is not None:
            cfg.connection_properties = [bigquery.ConnectionProperty("session_id", session_id)]
        elif session and self._tx is not None and self._tx.began:
            cfg.connection_properties = [bigquery.ConnectionProperty("session_id", self._tx.session_id)]
        return cfg

    def _run(self, sql: str, params: Optional[Mapping[str, Any]], label: str, *, qualified: bool = False,
             extra_params: Optional[list] = None, create_session: bool = False, session: bool = True,
             flush: bool = True, session_id: Optional[str] = None, retry: bool = True):
        """Run one query job (text already in BigQuery SQL) to completion: (job, RowIterator).

        A transient failure (rate limit, a transaction aborted by a concurrent update, a
        backend error) is retried with bounded exponential backoff (``retry_delays``), each
        attempt recorded in ``wh.jobs`` and ``wh.retries``. Inside an open session
        transaction the failed job took the transaction with it, so the retry opens a new
        session and replays the transaction's statements so far (the journal), then the job.
        """
        if flush and self._carry:  # committed transactions go first, in order (one job)
            self.flush_commits()
        in_session = session and not create_session and self._tx is not None and self._tx.began
        if session and not create_session and flush and self._tx is not None and self._tx.pending:
            self._send("insert rows")
            in_session = True
        for attempt in range(len(self.retry_delays) + 1):
            try:
                out = self._run_once(sql, params, label, qualified=qualified, extra_params=extra_params,
                                     create_session=create_session, session=session, session_id=session_id)
            except _TransientError as e:
                if not retry:
                    raise
                if attempt == len(self.retry_delays):
                    raise WarehouseError(f"{label or 'query'} failed on BigQuery after {attempt + 1} attempts "
                                         f"({e.reason}): {e}") from None
                delay = self.retry_delays[attempt]
                self.retries.append({"step": label, "reason": e.reason, "attempt": attempt + 1, "delay_s": delay,
                                     "replayed": len(self._tx.journal) if in_session else 0})
                time.sleep(delay)
                if in_session:
                    self._replay()
                continue
            if in_session and not self._replaying:
                self._tx.journal.append(dict(sql=sql, params=params, label=label, qualified=qualified,
                                             extra_params=extra_params))
            return out
        raise AssertionError("unreachable")  # pragma: no cover

    def _defer(self, statements: list[str], params: Optional[Mapping[str, Any]], label: str, *,
               count: bool = False, extra_params: Optional[list] = None) -> Optional[DeferredCount]:
        """Queue statements of the open transaction; they are sent with its next job (a read in
        the transaction, or the COMMIT), so a chunk's writes cost no job of their own.
        ``count``: return a ``DeferredCount`` of the rows they insert and delete."""
        tx = self._tx
        self._note_stage(label)
        sql = ";\n".join(statements)
        extra = list(extra_params or [])
        qp = self._params(sql, params, label, frozenset(p.name for p in extra)) + extra
        self._seq += 1  # per warehouse: a carried transaction's statements share a job with the next one's
        renames = {q.name: f"{q.name}__d{self._seq}" for q in qp}
        text = _rename_parameters(self.qualify(sql), renames)
        for q in qp:
            q.name = renames[q.name]
        dc = DeferredCount(self, label) if count else None
        tx.pending.append(_Pending(text, qp, label, dml=sum(_is_dml(st) for st in statements), count=dc))
        if sum(_param_size(q) for pend in tx.pending for q in pend.params) > STRUCT_PARAM_BYTES:
            self._send("insert rows")  # request size: send what is queued
        return dc

    def _resolve(self, count: Optional[DeferredCount] = None) -> None:
        """A deferred count was read: send the queued statements now (a committed transaction's
        carried ones, or the open transaction's, with the carried ones at their head)."""
        with self._lock:
            mine = self._tx is not None and any(pend.count is count for pend in self._tx.pending)
            if self._carry and not mine:
                self.flush_commits()
                return
            if self._tx is None or not self._tx.pending:
                raise WarehouseError("a deferred write's row counts were read outside its transaction")
            self._send(self._tx.pending[0].label)

    def _send(self, label: str, query: Optional[tuple[str, list]] = None, *, tail: Optional[str] = None):
        """One job: the queued statements, then ``query`` (qualified text, parameters; its rows are
        the script's result) or ``tail`` (``COMMIT TRANSACTION``). The first job of a transaction
        opens its session with ``BEGIN TRANSACTION`` in the same script. Row counts of deferred
        writes are read off the script's child jobs."""
        tx = self._tx
        pending, tx.pending = tx.pending, []
        skip = 0
        texts = [pend.text for pend in pending]
        params = [q for pend in pending for q in pend.params]
        if query is not None:
            texts.append(query[0])
            params += list(query[1])
        if tail:
            texts.append(tail)
        body = ";\n".join(texts)
        try:
            if tx.began:
                job, rows = self._run(body, None, label, qualified=True, extra_params=params, flush=False)
            elif tail == "COMMIT TRANSACTION":  # the whole transaction in one script: no session needed
                job, rows = self._run("BEGIN TRANSACTION;\n" + body, None, label, qualified=True,
                                      extra_params=params, session=False, flush=False)
            else:
                carried, self._carry = self._carry, []
                job, rows = self._open_with(carried, body, label, params)
                skip = self._carried_dml  # the carried statements' child jobs come first (settled already)
                tx.journal.append(dict(sql=body, params=None, label=label, qualified=True, extra_params=params))
        except WarehouseError as e:
            for pend in pending:
                if pend.count is not None:
                    pend.count._dropped = True
            steps = sorted({pend.label for pend in pending} - {label})
            if steps:
                raise type(e)(f"{e} (the job also carried the deferred {', '.join(steps)})") from None
            raise
        self._settle_counts(pending, job, skip)
        return job, rows

    def _settle_counts(self, pending: list[_Pending], job, skip: int = 0) -> None:
        """The row counts of a job's queued writes, from its child jobs (in statement order,
        after the first ``skip`` DML statements, which belong to others)."""
        if job is None or not any(pend.count is not None for pend in pending):
            return
        children = _dml_children(self.client, job)[skip:]
        i = 0
        for pend in pending:
            mine, i = children[i:i + pend.dml], i + pend.dml
            if pend.count is not None:
                counts: dict[str, int] = {}
                for kind, n in mine:
                    counts[kind] = counts.get(kind, 0) + n
                pend.count._settle(counts)

    def _replay(self) -> None:
        """A new session and transaction with the journal's statements run again (same text and
        parameters, so the same rows), after a transient error aborted the previous one."""
        tx = self._tx
        old = tx.session_id
        self._quiet(lambda: self._run_once("CALL BQ.ABORT_SESSION()", None, "end session", qualified=True))
        tx.session_id = self._session = None  # the replay begins in a new session (recorded in the lease)
        self._replaying = True
        try:
            self._begin()
            for j in tx.journal:
                self._run(j["sql"], j["params"], j["label"], qualified=j["qualified"], extra_params=j["extra_params"],
                          flush=False)
        finally:
            self._replaying = False
        self.replayed_sessions.append(old)

    def _run_once(self, sql: str, params: Optional[Mapping[str, Any]], label: str, *, qualified: bool = False,
                  extra_params: Optional[list] = None, create_session: bool = False, session: bool = True,
                  session_id: Optional[str] = None):
        from google.api_core import exceptions as gexc

        text = sql if qualified else self.qualify(sql)
        extra = list(extra_params or [])
        if qualified and params is None:  # a script of queued statements: its parameters are all given
            qp = extra
        else:
            qp = self._params(sql, params, label, frozenset(p.name for p in extra)) + extra
        cfg = self._job_config(label, qp, create_session=create_session, session=session, session_id=session_id)
        job = None
        try:
            if label in _CLEANUP_LABELS:  # a rollback or session end gives up soon (see CLEANUP_DEADLINE_S)
                from google.cloud.bigquery import DEFAULT_RETRY

                job = self.client.query(text, job_config=cfg, job_id_prefix=f"runbook_{label_value(self._stage_for(label))}_", job_retry=None,
                                        retry=DEFAULT_RETRY.with_deadline(CLEANUP_DEADLINE_S),
                                        timeout=CLEANUP_DEADLINE_S)
                rows = job.result(job_retry=None, timeout=CLEANUP_DEADLINE_S)
            else:
                job = self.client.query(text, job_config=cfg,
                                        job_id_prefix=f"runbook_{label_value(self._stage_for(label))}_", job_retry=None)
                rows = job.result(job_retry=None)
        except gexc.GoogleAPICallError as e:
            reason = _reason(e)
            if job is not None:
                self._record(job, "query", label, error=f"{reason}: {_message(e)}")
            self._failed_job = job
            if is_transient(reason, _message(e)):
                raise _TransientError(reason, _message(e)) from None
            if reason == "bytesBilledLimitExceeded":
                raise self._cap_error(text, params, label, e) from None
            raise WarehouseError(f"{label or 'query'} failed on BigQuery"
                                 f"{f' (job {job.job_id})' if job is not None else ''}: {_message(e)}") from None
        self._record(job, "query", label)
        return job, rows

    def _cap_error(self, text: str, params, label: str, e) -> BytesBilledLimitError:
        m = re.search(r"(\d+) or higher required", _message(e))
        needed = int(m.group(1)) if m else None
        tables = _referenced_tables(text)
        try:
            processed = self._dry_run(text, params, label, qualified=True)
        except WarehouseError:
            processed = None
        stage = self._stage_for(label)
        msg = (
            f"stage {stage}: {label or 'a query'} would bill {human_bytes(needed)} "
            f"(scanning {human_bytes(processed)} of {', '.join(tables) or 'no table'}), over "
            f"bigquery.maximum_bytes_billed = {human_bytes(self.maximum_bytes_billed)}. Nothing was written by this "
            f"job. Narrow the run (start_date/end_date, seasons, chunk_days), raise maximum_bytes_billed, or run "
            f"`runbook plan` first to see the bytes per stage."
        )
        return BytesBilledLimitError(msg, stage=stage, tables=tables, bytes_billed=needed, bytes_processed=processed,
                                     cap=self.maximum_bytes_billed)

    # -- queries ------------------------------------------------------------------------------
    def query(self, sql, params=None, *, label=""):
        with self._lock:
            if self._tx is not None and self._tx.pending:  # the queued writes ride with this read
                qp = self._params(sql, params, label)
                _, rows = self._send(label, (self.qualify(sql), qp))
            elif self._carry and (self._tx is None or not self._tx.began):  # so do committed transactions
                carried, self._carry = self._carry, []
                qp = self._params(sql, params, label)
                _, rows = self._open_with(carried, self.qualify(sql), label, qp, begin=False)
            else:
                _, rows = self._run(sql, params, label)
            return arrow_to_frame(rows.to_arrow(create_bqstorage_client=False))

    def execute(self, sql, params=None, *, label=""):
        self._check_writable(label or "execute")
        with self._lock:
            if self._tx is not None and _is_dml(sql):
                self._note_stage(label)
                self._begin()
                self._tx.written.update(_written_tables(sql))
            self._run(sql, params, label)

    def write_changes(self, table, start, end, *, sql, params=None, where=None):
        """``Warehouse.write_changes`` with no job of its own: the DELETE and the INSERT are queued
        in the transaction and sent with its next job (a read, or the COMMIT: a chunk's writes and
        the read after them are one script). The returned ``DeferredCount`` holds the row counts
        once that job ran (from the script's child jobs); reading it earlier sends the queue."""
        t = schema.table(table)
        self._check_writable(f"replace {t.fqn}")
        delete, insert, p = change_statements(t, start, end, sql, params, where)
        with self.transaction():
            with self._lock:
                self._tx.written.add(t.fqn)
                count = self._defer([delete, insert], p, f"replace {t.fqn}", count=True)
        return count

    def dml(self, sql, params=None, *, label=""):
        """One DML job (in the open transaction's session); the rows it affected."""
        self._check_writable(label or "dml")
        with self._lock:
            if self._tx is not None:
                self._note_stage(label)
                self._begin()
                self._tx.written.update(_written_tables(sql))
            job, _ = self._run(sql, params, label)
            return int(job.num_dml_affected_rows or 0)

    def execute_standalone(self, sql: str, params: Optional[Mapping[str, Any]] = None, *, label: str = "") -> int:
        """One job outside any open transaction's session (the lease's own writes, which must
        not commit or roll back with the stage's data); the DML rows it affected."""
        self._check_writable(label or "execute")
        with self._lock:
            job, _ = self._run(sql, params, label, session=False, flush=False)
            return int(job.num_dml_affected_rows or 0)

    def query_standalone(self, sql: str, params: Optional[Mapping[str, Any]] = None, *, label: str = "") -> pd.DataFrame:
        """A read outside any open transaction (which would see only its snapshot): the lease."""
        with self._lock:
            _, rows = self._run(sql, params, label, session=False, flush=False)
            return arrow_to_frame(rows.to_arrow(create_bqstorage_client=False))

    def dry_run_bytes(self, sql: str, params: Optional[Mapping[str, Any]] = None, *, label: str = "") -> int:
        """Bytes a statement would process (a dry run: free, nothing runs)."""
        return self._dry_run(sql, params, label or "dry run")

    def _dry_run(self, sql: str, params, label: str, qualified: bool = False) -> int:
        from google.api_core import exceptions as gexc

        text = sql if qualified else self.qualify(sql)
        cfg = self._job_config(label, self._params(sql, params, label), dry_run=True, session=False)
        try:
            job = self.client.query(text, job_config=cfg)
        except gexc.GoogleAPICallError as e:
            raise WarehouseError(f"dry run of {label or 'query'} failed on BigQuery: {_message(e)}") from None
        entry = {"job_id": job.job_id, "kind": "dry_run", "stage": self._stage_for(label), "step": label,
                 "labels": dict(job.labels or {}), "state": "DONE", "bytes_processed": job.total_bytes_processed}
        self.jobs.append(entry)
        return int(job.total_bytes_processed or 0)

    def check_plan_budget(self, total_bytes: int) -> None:
        """Refuse a run whose dry-run total over all stages exceeds ``max_plan_bytes``."""
        if self.max_plan_bytes and total_bytes > self.max_plan_bytes:
            raise WarehouseError(
                f"the run would scan {human_bytes(total_bytes)} over all stages (dry runs), over "
                f"bigquery.max_plan_bytes = {human_bytes(self.max_plan_bytes)}; narrow the run or raise max_plan_bytes"
            )

    def read_table(self, fqn: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A whole table. Says so with a filter on the date column: tables may require one."""
        t = schema.table(fqn)
        cols = ", ".join(columns or t.columns)
        return self.query(f"SELECT {cols} FROM {t.fqn} WHERE {t.date_column} >= @_all_from",
                          {"_all_from": date(1, 1, 1)}, label=f"read {t.fqn}")

    def row_count(self, fqn: str) -> int:
        t = schema.table(fqn)
        frame = self.query(f"SELECT COUNT(*) AS n FROM {t.fqn} WHERE {t.date_column} >= @_all_from",
                           {"_all_from": date(1, 1, 1)}, label=f"count {t.fqn}")
        return int(frame.iloc[0, 0])

    # -- schema ---------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create missing datasets and tables (partitioned, clustered) from ``nbcore.schema``; idempotent."""
        if self.read_only:
            return
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        with self._lock:
            for dataset in schema.datasets():
                ds_id = f"{self.project}.{self.dataset(dataset)}"
                try:
                    existing = {t.table_id for t in self.client.list_tables(ds_id)}
                except gexc.NotFound:
                    ds = bigquery.Dataset(ds_id)
                    ds.location = self.location
                    ds.labels = {"app": APP_LABEL}
                    ds.description = f"backfill-runbook dataset {dataset}"
                    self.client.create_dataset(ds, exists_ok=True)
                    existing = set()
                for t in schema.all_tables():
                    if t.dataset == dataset and t.name not in existing:
                        self.client.create_table(self._bq_table(t), exists_ok=True)

    def _bq_table(self, t: schema.Table, table_id: Optional[str] = None, staging: bool = False):
        from google.cloud import bigquery

        table = bigquery.Table(table_id or self.table_id(t.fqn), schema=bq_schema(t))
        table.labels = {"app": APP_LABEL}
        if staging:
            table.expires = datetime.now(timezone.utc) + STAGING_TTL
            table.description = f"staging rows for {t.fqn} (run {self.run_id}); deleted after the write, expires in a day"
            return table
        table.description = t.description[:1000] if t.description else None
        table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field=t.date_column)
        if t.cluster_by:
            table.clustering_fields = list(t.cluster_by)[:4]
        if getattr(t, "require_partition_filter", False):
            table.require_partition_filter = True
        return table

    def table_exists(self, fqn: str) -> bool:
        from google.api_core import exceptions as gexc

        try:
            self.client.get_table(self.table_id(fqn))
            return True
        except gexc.NotFound:
            return False

    def drop_all(self) -> None:
        """Delete every dataset of the pipeline (with this suffix), contents included, and recreate them empty.

        Refuses the unsuffixed datasets on a real project: the demo must never delete a
        production ``nba_raw``; give a sandbox ``dataset_suffix`` instead.
        """
        self._check_writable("drop_all")
        if not self.dataset_suffix and not is_loopback(self.api_endpoint):
            raise WarehouseError(
                f"refusing to delete the unsuffixed datasets {', '.join(schema.datasets())} of project {self.project}: "
                f"set bigquery.dataset_suffix (e.g. _demo) to build the demo in sandbox datasets"
            )
        with self._lock:
            for dataset in schema.datasets():
                self.client.delete_dataset(f"{self.project}.{self.dataset(dataset)}", delete_contents=True,
                                           not_found_ok=True)
        self.ensure_schema()

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._tx is not None:  # nested: part of the outer transaction
                yield
                return
            tx = self._tx = _Tx()
            try:
                yield
            except BaseException:
                self._tx = None
                self._finish(tx, commit=False)
                raise
            self._tx = None
            self._finish(tx, commit=True)

    def _begin(self) -> None:
        """Open the transaction's session and BEGIN, just before its first write."""
        tx = self._tx
        if tx is None or tx.began:
            return
        if self._carry:
            self.flush_commits()
        self._open_transaction("BEGIN TRANSACTION", "begin transaction", [])

    def _open_transaction(self, text: str, label: str, params: list, retry: bool = True):
        """The transaction's first job (``BEGIN TRANSACTION`` and what rides with it): in the
        session this warehouse already holds, if it has one, else in a new session, whose id is
        recorded in the lease. One session per warehouse (a stage) rather than per transaction:
        a lease update per chunk would cost a job each; a committed session holds nothing, and a
        resume after a crash aborts the one the lease names."""
        if self._session is not None:
            try:
                job, rows = self._run(text, None, label, qualified=True, extra_params=params, flush=False,
                                      session_id=self._session, retry=retry)
            except WarehouseError as e:
                if "session" not in str(e).lower():
                    raise
                self._session = None  # it expired or was aborted: open a new one below
            else:
                self._tx.session_id = self._session
                return job, rows
        job, rows = self._run(text, None, label, qualified=True, extra_params=params, create_session=True,
                              flush=False, retry=retry)
        self._opened(job)
        return job, rows

    # -- pipelined commits ----------------------------------------------------------------------
    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Within: a transaction's COMMIT (with its last queued statements, or the whole
        transaction when it read nothing) is not a job of its own but rides at the head of the
        warehouse's next job: the next transaction's first job, in the same session. A chunked
        stage's N chunks then cost N jobs, not 2N. ``pending_commits`` says how many committed
        transactions are not confirmed yet; a carried transaction that fails raises
        ``CommitFailed`` (from the job that carried it, or from ``flush_commits``), saying how
        many before it committed. Leaving the block sends what is still carried."""
        before = self._pipelined
        self._pipelined = True
        try:
            yield
        finally:
            self._pipelined = before
        if not before and self._carry:
            self.flush_commits()

    def pending_commits(self) -> int:
        return len(self._carry)

    def flush_commits(self) -> None:
        """Send the carried transactions now, in one job."""
        with self._lock:
            if not self._carry:
                return
            carried, self._carry = self._carry, []
            self._open_with(carried, None, "commit transaction", [])

    def _open_with(self, carried: list[_Carried], body: Optional[str], label: str, params: list,
                   begin: bool = True):
        """One job: the carried transactions' tails (oldest first), then ``body``: the next
        transaction's first statements (after ``BEGIN TRANSACTION``), or a read (``begin=False``:
        its rows are the job's result), or nothing (None). Carried transactions that committed
        are settled; one whose part failed raises ``CommitFailed``."""
        texts = [t for c in carried for t in c.texts()]
        cparams = [q for c in carried for q in c.params()]
        own = None if body is None else (f"BEGIN TRANSACTION;\n{body}" if begin else body)
        if own is not None:
            texts.append(own)
        text = ";\n".join(texts)
        self._carried_dml = 0
        if not carried:
            return self._open_transaction(text, label, params) if begin else \
                self._run(text, None, label, qualified=True, extra_params=params, flush=False)
        in_session = any(not c.script for c in carried)
        self._failed_job = None
        try:
            if own is not None and begin:
                job, rows = self._open_transaction(text, label, cparams + params, retry=False)
            else:
                job, rows = self._run(text, None, label, qualified=True, extra_params=cparams + params, flush=False,
                                      session=in_session, session_id=self._session if in_session else None,
                                      retry=False)
        except (WarehouseError, _TransientError) as e:
            done = _commits_in(self.client, self._failed_job)
            self._settle_carried(carried[:done], self._failed_job)
            rest = carried[done:]
            if isinstance(e, _TransientError):  # nothing is lost: commit the rest on their own, then go on
                self.retries.append({"step": label, "reason": e.reason, "attempt": 1, "delay_s": 0.0,
                                     "replayed": len(rest)})
                self._commit_each(rest, done)
                return self._open_with([], body, label, params, begin) if body is not None else (None, None)
            if rest:
                self._abandon(rest)
                raise CommitFailed(str(e), committed=done) from None
            raise
        self._settle_carried(carried, job)
        self._carried_dml = sum(pend.dml for c in carried for pend in c.pending)
        return job, rows

    def _settle_carried(self, carried: list[_Carried], job) -> None:
        """Row counts of committed carried transactions, from the job's child statements."""
        self._settle_counts([pend for c in carried for pend in c.pending], job)
        for c in carried:
            self._drop_staging(c.tx)

    def _commit_each(self, carried: list[_Carried], offset: int) -> None:
        """Commit carried transactions one job each, after a transient error hit the job that
        carried them: a whole script is sent again; a session transaction is replayed in a new
        session (its journal) and committed, as ``_run`` does after a transient error."""
        for k, c in enumerate(carried):
            try:
                if c.script:
                    job, _ = self._run(";\n".join(c.texts()), None, "commit transaction", qualified=True,
                                       extra_params=c.params(), session=False, flush=False)
                    self._settle_carried([c], job)
                else:
                    current, self._tx = self._tx, c.tx  # the transaction that was opening waits
                    c.tx.pending = c.pending
                    try:
                        self._replay()
                        self._send("commit transaction", tail="COMMIT TRANSACTION")
                        self._session = c.tx.session_id
                    finally:
                        self._tx = current
                    self._drop_staging(c.tx)
            except WarehouseError as e:
                self._abandon(carried[k:])
                raise CommitFailed(str(e), committed=offset + k) from None

    def _abandon(self, carried: list[_Carried]) -> None:
        """Carried transactions that will not commit: their counts say so, their session ends."""
        for c in carried:
            _drop(c.tx)
            for pend in c.pending:
                if pend.count is not None:
                    pend.count._dropped = True
            self._drop_staging(c.tx)
        if any(not c.script for c in carried) and self._session is not None:
            sid, self._session = self._session, None
            self._quiet(lambda: self._run_once("CALL BQ.ABORT_SESSION()", None, "end session", qualified=True,
                                               session_id=sid))

    def _drop_staging(self, tx: _Tx) -> None:
        for table_id in tx.staging:
            self._quiet(lambda t=table_id: self.client.delete_table(t, not_found_ok=True))
        tx.staging = []

    def _opened(self, job) -> None:
        """Keep the session a BEGIN job opened; record it in the lease (a resume aborts it)."""
        tx = self._tx
        info = job.session_info
        if info is None or not info.session_id:
            raise WarehouseError("BigQuery did not open a session for the transaction")
        tx.session_id = info.session_id
        if self.lease is not None:
            self.lease.heartbeat(tx.session_id)  # a resume after a crash aborts this session first

    def abort_session(self, session_id: str) -> bool:
        """End a session left open (by a crashed run) and roll back its transaction; False if
        it had already ended or expired."""
        from google.cloud import bigquery

        cfg = bigquery.QueryJobConfig(labels=self._labels("abort session"), use_legacy_sql=False,
                                      connection_properties=[bigquery.ConnectionProperty("session_id", session_id)])
        try:
            job = self.client.query("CALL BQ.ABORT_SESSION()", job_config=cfg, job_retry=None)
            job.result(job_retry=None)
        except Exception as e:  # noqa: BLE001 - an expired or unknown session is already gone
            self.jobs.append({"job_id": "", "kind": "query", "stage": self._stage_for("abort session"),
                              "step": "abort session", "labels": {}, "state": "FAILED", "error": str(e)[:300]})
            return False
        self._record(job, "query", "abort session")
        self.aborted_sessions.append(session_id)
        return True

    def _finish(self, tx: _Tx, commit: bool) -> None:
        if commit and self._pipelined and (tx.began or tx.pending):
            # committed here; its COMMIT rides with the next job (its staging tables live until then)
            self._carry.append(_Carried(tx, tx.pending, script=not tx.began))
            tx.pending = []
            if tx.began:
                self._session = tx.session_id
            if sum(_param_size(q) for c in self._carry for q in c.params()) > CARRY_PARAM_BYTES:
                self.flush_commits()  # request size: send what is carried now
            return
        try:
            if not tx.began:
                if commit and tx.pending:  # every write was deferred: the whole transaction is one script
                    self._tx = tx
                    try:
                        self._send("commit transaction", tail="COMMIT TRANSACTION")
                    finally:
                        self._tx = None
                else:
                    _drop(tx)
            if tx.began:
                self._tx = tx  # the COMMIT/ROLLBACK jobs run in the transaction's session
                try:
                    committed = False
                    if commit:
                        try:
                            self._send("commit transaction", tail="COMMIT TRANSACTION")
                            committed = True
                            self._session = tx.session_id  # the next transaction begins in it
                        except WarehouseError:
                            self._quiet(lambda: self._run("ROLLBACK TRANSACTION", None, "rollback transaction",
                                                          flush=False))
                            raise
                    else:
                        _drop(tx)
                        self._quiet(lambda: self._run("ROLLBACK TRANSACTION", None, "rollback transaction",
                                                      flush=False))
                finally:
                    if not committed:  # a committed session holds nothing and is kept for the next one
                        self._session = None
                        self._quiet(lambda: self._run("CALL BQ.ABORT_SESSION()", None, "end session", qualified=True,
                                                      flush=False))
                    self._tx = None
        finally:
            self._drop_staging(tx)

    @staticmethod
    def _quiet(fn) -> None:
        try:
            fn()
        except Exception:  # cleanup must not hide the error that got us here
            pass

    def _check_writable(self, what: str) -> None:
        if self.read_only:
            raise WarehouseError(f"{what}: this BigQuery warehouse was opened read-only")

    # -- writes --------------------------------------------------------------------------------
    def replace_range(self, table, start, end, *, sql=None, params=None, frame=None, where=None):
        t = schema.table(table)
        if (sql is None) == (frame is None):
            raise WarehouseError(f"replace_range({t.fqn}): give exactly one of sql= or frame=")
        self._check_writable(f"replace {t.fqn}")
        p = dict(params or {})
        p.update(_rr_start=start, _rr_end=end)
        cond = f"{t.date_column} BETWEEN @_rr_start AND @_rr_end" + (f" AND ({where})" if where else "")
        delete = f"DELETE FROM {t.fqn} WHERE {cond}"
        cols = ", ".join(t.columns)
        label = f"replace {t.fqn}"
        data = None
        if frame is not None:
            from .duckdb import _check_range

            data = conform_frame(t, frame)
            if len(data):
                _check_range(t, data, start, end)
        with self._lock:
            if self._tx is None:
                return self._replace_script(t, delete, p, sql, data, label)
            staging = None
            if data is not None and len(data) and self._use_staging(t, data):
                staging = self._stage_frame(t, data)  # before BEGIN: the transaction's snapshot includes it
            self._tx.written.add(t.fqn)
            if data is not None:  # deferred: sent with the transaction's next job
                if not len(data):
                    self._defer([delete], p, label)
                    return 0
                if staging is not None:
                    self._defer([delete, f"INSERT INTO {t.fqn} ({cols}) SELECT {cols} FROM {self.quoted(staging)}"], p, label)
                else:
                    self._defer([delete], p, label)
                    self._insert_rows(t, data, label)
                return len(data)
            select = sql.strip().rstrip(";")
            count = self._defer([delete, f"INSERT INTO {t.fqn} ({cols}) SELECT {cols} FROM ({select}) AS _new "
                                         f"WHERE _new.{t.date_column} BETWEEN @_rr_start AND @_rr_end"], p, label,
                                count=True)
            return count.inserted  # the caller wants the figure now: sends the queue

    def _note_stage(self, label: str) -> None:
        if self._tx is not None and self._tx.stage is None:
            stage = self._stage_for(label)
            self._tx.stage = stage if stage != "adhoc" else None

    def _use_staging(self, t: schema.Table, data: pd.DataFrame) -> bool:
        """A frame goes through a staging table (one load job) only when it is too big to ride as
        a query parameter and the transaction has not begun (its snapshot must include the
        staging table); otherwise its rows travel with the transaction's next job."""
        return not self._tx.began and len(data) * 40 * len(t.columns) > STRUCT_PARAM_BYTES

    def _replace_script(self, t: schema.Table, delete: str, p: dict, sql: Optional[str], data: Optional[pd.DataFrame],
                        label: str) -> int:
        """One job outside a transaction: BEGIN TRANSACTION; DELETE; INSERT; COMMIT TRANSACTION."""
        cols = ", ".join(t.columns)
        staging = None
        if data is not None:
            if not len(data):
                self._run(delete, p, label)
                return 0
            staging = self._stage_frame(t, data)
            insert = f"INSERT INTO {t.fqn} ({cols}) SELECT {cols} FROM {self.quoted(staging)}"
        else:
            select = sql.strip().rstrip(";")
            insert = (f"INSERT INTO {t.fqn} ({cols}) SELECT {cols} FROM ({select}) AS _new "
                      f"WHERE _new.{t.date_column} BETWEEN @_rr_start AND @_rr_end")
        script = f"BEGIN TRANSACTION;\n{delete};\n{insert};\nCOMMIT TRANSACTION;"
        try:
            job, _ = self._run(script, p, label)
        finally:
            if staging is not None:
                self._quiet(lambda: self.client.delete_table(staging, not_found_ok=True))
        if data is not None:
            return len(data)
        return _inserted_rows(self.client, job)

    def append(self, table: str, frame: pd.DataFrame) -> int:
        t = schema.table(table)
        self._check_writable(f"append to {t.fqn}")
        if frame.empty:
            return 0
        data = conform_frame(t, frame)
        label = f"append {t.fqn}"
        with self._lock:
            if self._tx is None:  # a load job is atomic on its own
                if self._carry:  # after the transactions committed before it
                    self.flush_commits()
                self._load_frame(t, data, self.table_id(t.fqn), label)
                return len(data)
            cols = ", ".join(t.columns)
            staging = self._stage_frame(t, data) if self._use_staging(t, data) else None
            self._tx.written.add(t.fqn)
            if staging is not None:
                self._defer([f"INSERT INTO {t.fqn} ({cols}) SELECT {cols} FROM {self.quoted(staging)}"], {}, label)
            else:
                self._insert_rows(t, data, label)  # deferred: runs with the next job (often the COMMIT)
            return len(data)

    # -- frames in -------------------------------------------------------------------------------
    def _stage_frame(self, t: schema.Table, data: pd.DataFrame) -> str:
        """Load rows into a fresh staging table (expires in a day); its ``project.dataset.table``."""
        name = f"{STAGING_PREFIX}{t.name}_{uuid.uuid4().hex[:12]}"
        table_id = f"{self.project}.{self.dataset(t.dataset)}.{name}"
        self.client.create_table(self._bq_table(t, table_id, staging=True))
        if self._tx is not None:
            self._tx.staging.append(table_id)
        try:
            self._load_frame(t, data, table_id, f"stage {t.fqn}")
        except BaseException:
            if self._tx is None:
                self._quiet(lambda: self.client.delete_table(table_id, not_found_ok=True))
            raise
        return table_id

    def _load_frame(self, t: schema.Table, data: pd.DataFrame, table_id: str, label: str) -> None:
        """pandas-gbq ``to_gbq`` (append) through our client: a load job carrying the run's labels."""
        import pandas_gbq
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        client = self.client
        before = len(getattr(client, "load_jobs", []))
        client.default_load_job_config = bigquery.LoadJobConfig(labels=self._labels(label))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # load_table_from_dataframe's pending deprecation, tqdm
                pandas_gbq.to_gbq(
                    bq_frame(t, data), table_id.split(".", 1)[1], project_id=self.project, if_exists="append",
                    table_schema=[f.to_api_repr() for f in bq_schema(t)], location=self.location,
                    progress_bar=False, bigquery_client=client,
                )
        except (gexc.GoogleAPICallError, pandas_gbq.exceptions.GenericGBQException, ValueError, pa.ArrowException) as e:
            for job in getattr(client, "load_jobs", [])[before:]:
                self._record(job, "load", label, error=str(e)[:500])
            raise WarehouseError(f"{label}: loading {len(data)} rows into {table_id} failed: {_message(e)}") from None
        finally:
            client.default_load_job_config = bigquery.LoadJobConfig()
        for job in getattr(client, "load_jobs", [])[before:]:
            self._record(job, "load", label)

    def _insert_rows(self, t: schema.Table, data: pd.DataFrame, label: str) -> None:
        """INSERT rows carried by an ``ARRAY<STRUCT>`` query parameter, in chunks, in the session."""
        from google.cloud import bigquery

        self._note_stage(label)
        cols = list(t.columns)
        select = ", ".join(f"_r.{c}" for c in cols)
        per_row = 40 * len(cols)
        chunk = max(1, STRUCT_PARAM_BYTES // per_row)
        values = python_rows(t, data)
        struct_type = bigquery.StructQueryParameterType(
            *[bigquery.ScalarQueryParameterType(schema_type(typ), name=c) for c, typ in t.columns.items()]
        )
        for i in range(0, len(values), chunk):
            rows = [
                bigquery.StructQueryParameter(None, *[
                    bigquery.ScalarQueryParameter(c, schema_type(typ), row[j]) for j, (c, typ) in enumerate(t.columns.items())
                ])
                for row in values[i:i + chunk]
            ]
            text = f"INSERT INTO {t.fqn} ({', '.join(cols)}) SELECT {select} FROM UNNEST(@_rows) AS _r"
            self._defer([text], None, label, extra_params=[bigquery.ArrayQueryParameter("_rows", struct_type, rows)])


# -- module helpers ----------------------------------------------------------------------------
def _make_client(project: str, location: str, credentials: Any, api_endpoint: Optional[str]):
    from google.api_core.client_options import ClientOptions
    from google.auth import exceptions as auth_exc
    from google.cloud import bigquery

    class RecordingClient(bigquery.Client):
        """A client that remembers the load jobs it starts (pandas-gbq does not return them)."""

        def load_table_from_file(self, *args, **kwargs):
            job = super().load_table_from_file(*args, **kwargs)
            self.load_jobs.append(job)
            return job

    options = ClientOptions(api_endpoint=api_endpoint) if api_endpoint else None
    try:
        client = RecordingClient(project=project, credentials=credentials, location=location, client_options=options)
    except auth_exc.DefaultCredentialsError:
        raise WarehouseError(
            "no Google credentials found: run `gcloud auth application-default login` (Application Default "
            "Credentials), or point RUNBOOK_CREDENTIALS_PATH (or bigquery.credentials_path) at a service-account key"
        ) from None
    client.load_jobs = []
    return client


def _credentials(credentials_path, api_endpoint: Optional[str]):
    """Anonymous for a loopback endpoint (a local test server never gets a real key); else
    service-account credentials from the (secret) path; else ADC (None).

    Error messages never include the path: it is a secret, and errors end up in archived notebooks.
    """
    if is_loopback(api_endpoint):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    if credentials_path is not None:
        path = credentials_path.get_secret_value() if hasattr(credentials_path, "get_secret_value") else str(credentials_path)
        if path:
            if not os.path.isfile(path):
                raise WarehouseError(
                    "bigquery.credentials_path: the service-account key file does not exist (the path is a secret and "
                    "is not shown); point RUNBOOK_CREDENTIALS_PATH at the JSON key, or leave it empty to use "
                    "Application Default Credentials"
                )
            from google.oauth2 import service_account

            try:
                return service_account.Credentials.from_service_account_file(
                    path, scopes=["https://www.googleapis.com/auth/cloud-platform"])
            except Exception as e:
                raise WarehouseError(
                    f"bigquery.credentials_path: the file is not a usable service-account key ({type(e).__name__}; "
                    "the path is a secret and is not shown)"
                ) from None
    return None


def _reason(e) -> str:
    for err in getattr(e, "errors", None) or []:
        if isinstance(err, dict) and err.get("reason"):
            return err["reason"]
    return type(e).__name__


def _message(e) -> str:
    msg = getattr(e, "message", None) or str(e)
    return msg.split("\n\nLocation:")[0].strip()


# -- identifiers: the one place they are checked and quoted --------------------------------------------
_IDENTIFIER_RULES = {
    "project": (re.compile(r"^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z](?:[a-z0-9-]*[a-z0-9])?$"),
                "lowercase letters, digits and hyphens, starting with a letter (legacy: domain.com:project)"),
    "dataset_suffix": (re.compile(r"^[A-Za-z0-9_]*$"), "letters, digits and underscores"),
    "dataset": (re.compile(r"^[A-Za-z0-9_]{1,1024}$"), "letters, digits and underscores, at most 1,024"),
    "table": (re.compile(r"^[A-Za-z0-9_]{1,1024}$"), "letters, digits and underscores, at most 1,024"),
}


def check_identifier(kind: str, value: str) -> str:
    """``value`` if it follows BigQuery's rule for ``kind``, else ``WarehouseError`` naming the rule.
    ``params`` refuses a bad project or suffix first (exit 2); this guards every other caller."""
    rule, words = _IDENTIFIER_RULES[kind]
    if not isinstance(value, str) or not rule.match(value):
        raise WarehouseError(f"BigQuery {kind} {value!r} is not valid: {words}")
    return value


def quote_id(project: str, dataset: str, table: str) -> str:
    """```project`.`dataset`.`table``` for statement text, each part checked by ``check_identifier``
    first: no identifier reaches BigQuery text unchecked or unquoted (statements from ``.sql`` files
    are qualified by sqlglot, ``qualify_tables``, which quotes the same way)."""
    parts = (check_identifier("project", project), check_identifier("dataset", dataset), check_identifier("table", table))
    return ".".join(f"`{p}`" for p in parts)


@lru_cache(maxsize=512)
def _qualify(sql: str, project: str, suffix: str) -> str:
    return qualify_tables(sql, project, suffix)


def _referenced_tables(text: str) -> list[str]:
    out = []
    try:
        for stmt in sqlglot.parse(text, read="bigquery"):
            if stmt is None:
                continue
            ctes = {c.alias_or_name for c in stmt.find_all(exp.CTE)}
            for t in stmt.find_all(exp.Table):
                if t.db and t.name not in ctes:
                    name = ".".join(p for p in (t.catalog, t.db, t.name) if p)
                    if name not in out:
                        out.append(name)
    except sqlglot.errors.ParseError:
        pass
    return out


def _is_dml(sql: str) -> bool:
    try:
        return any(isinstance(s, _DML) for s in sqlglot.parse(sql, read="bigquery") if s is not None)
    except sqlglot.errors.ParseError:
        return False


def _written_tables(sql: str) -> set[str]:
    out = set()
    for s in sqlglot.parse(sql, read="bigquery"):
        target = s.this if isinstance(s, _DML) else None
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table) and target.db:
            out.add(f"{target.db}.{target.name}")
    return out


def _drop(tx: _Tx) -> None:
    """Forget a transaction's deferred statements (rolled back): their counts say so if read."""
    for pend in tx.pending:
        if pend.count is not None:
            pend.count._dropped = True
    tx.pending = []


_QUOTED = re.compile(r"/\*.*?\*/|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|--[^\n]*", re.S)
_AT_NAME = re.compile(r"(?<![@\w])@(\w+)")


def _rename_parameters(text: str, renames: Mapping[str, str]) -> str:
    """``@name`` -> ``@<renames[name]>`` outside strings, quoted names and comments (statements of
    several writes share one script, so their parameters must not collide)."""
    if not renames:
        return text
    out, pos = [], 0
    for m in _QUOTED.finditer(text):
        out.append(_AT_NAME.sub(lambda a: "@" + renames.get(a.group(1), a.group(1)), text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_AT_NAME.sub(lambda a: "@" + renames.get(a.group(1), a.group(1)), text[pos:]))
    return "".join(out)


def _param_size(q) -> int:
    """A rough request size of a query parameter (rows of an ARRAY<STRUCT> dominate)."""
    values = getattr(q, "values", None)
    if values is None:
        return 64
    width = len(getattr(values[0], "struct_values", {}) or {}) if values else 1
    return len(values) * 40 * max(1, width)


def _dml_children(client, job) -> list[tuple[str, int]]:
    """(statement type, rows affected) of each DML statement of a script, in script order (child
    job ids end with the statement's index, ``script_job_<id>_<n>``)."""
    out = []
    for child in client.list_jobs(parent_job=job):
        kind = getattr(child, "statement_type", None)
        if kind in ("INSERT", "DELETE", "UPDATE", "MERGE"):
            m = re.search(r"_(\d+)$", child.job_id or "")
            created = getattr(child, "created", None)
            out.append(((int(m.group(1)) if m else 0, created.timestamp() if created else 0.0), kind,
                        int(child.num_dml_affected_rows or 0)))
    return [(kind, n) for _, kind, n in sorted(out, key=lambda x: x[0])]


def _commits_in(client, job) -> int:
    """How many ``COMMIT TRANSACTION`` statements of a (failed) script ran: its child jobs."""
    if job is None:
        return 0
    try:
        return sum(1 for child in client.list_jobs(parent_job=job)
                   if getattr(child, "statement_type", None) == "COMMIT_TRANSACTION" and not child.error_result)
    except Exception:  # noqa: BLE001 - unknown: assume nothing committed (the runner then checks history)
        return 0


def _inserted_rows(client, job) -> int:
    """Rows the INSERT of a transaction script inserted: from the script's child jobs."""
    n = 0
    for child in client.list_jobs(parent_job=job):
        if getattr(child, "statement_type", None) == "INSERT":
            n += int(child.num_dml_affected_rows or 0)
    return n


# -- types ------------------------------------------------------------------------------------
_SCHEMA_TYPES = {"INT64": "INT64", "FLOAT64": "FLOAT64", "NUMERIC": "NUMERIC", "BOOL": "BOOL", "STRING": "STRING",
                 "DATE": "DATE", "TIMESTAMP": "TIMESTAMP"}


def schema_type(typ: str) -> str:
    return _SCHEMA_TYPES[typ]


def bq_schema(t: schema.Table) -> list:
    """BigQuery schema fields for a table: key columns REQUIRED (DuckDB makes them NOT NULL)."""
    from google.cloud import bigquery

    return [bigquery.SchemaField(c, schema_type(typ), mode="REQUIRED" if c in t.key else "NULLABLE")
            for c, typ in t.columns.items()]


def bq_frame(t: schema.Table, data: pd.DataFrame) -> pd.DataFrame:
    """A frame with dtypes pandas-gbq uploads as the table's types (what DuckDB's CASTs do)."""
    out = {}
    for c, typ in t.columns.items():
        s = data[c]
        if typ == "INT64":
            s = pd.to_numeric(s, errors="raise")
            out[c] = s.round().astype("Int64") if s.dtype.kind == "f" else s.astype("Int64")
        elif typ in ("FLOAT64", "NUMERIC"):
            out[c] = pd.to_numeric(s, errors="raise").astype("float64")
        elif typ == "BOOL":
            out[c] = s.astype("boolean")
        elif typ == "STRING":
            out[c] = s.astype("string")
        elif typ == "DATE":
            out[c] = pd.to_datetime(s).dt.date.astype("object").where(s.notna(), None)
        elif typ == "TIMESTAMP":
            ts = pd.to_datetime(s)
            out[c] = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
        else:  # pragma: no cover - schema types are checked when the schema loads
            out[c] = s
    return pd.DataFrame(out, index=data.index)


def python_rows(t: schema.Table, data: pd.DataFrame) -> list[tuple]:
    """Rows as Python values of the columns' types (NULL for NaN/NaT/NA), for query parameters."""
    frame = bq_frame(t, data)
    cols = []
    for c, typ in t.columns.items():
        s = frame[c]
        if typ == "TIMESTAMP":
            vals = [None if pd.isna(v) else v.to_pydatetime() for v in s]
        elif typ == "NUMERIC":
            vals = [None if pd.isna(v) else Decimal(repr(float(v))) for v in s]
        else:
            vals = [None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else
                    (v.item() if hasattr(v, "item") else v) for v in s.astype("object")]
        cols.append(vals)
    return list(zip(*cols)) if cols else []


def to_query_parameter(name: str, value: Any):
    """A Python value as a typed BigQuery query parameter (lists become ARRAY parameters)."""
    from google.cloud import bigquery

    if isinstance(value, (bigquery.ScalarQueryParameter, bigquery.ArrayQueryParameter, bigquery.StructQueryParameter)):
        value.name = name
        return value
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Index, pd.Series)):
        items = [_py(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else list(value))]
        types = {_scalar_type(v) for v in items if v is not None}
        if None in [v for v in items]:
            raise WarehouseError(f"query parameter @{name}: a list may not hold NULL (BigQuery arrays cannot)")
        if types == {"INT64", "FLOAT64"}:
            types = {"FLOAT64"}
        if types == {"DATE", "TIMESTAMP"}:  # a date is midnight UTC of its day, as a TIMESTAMP
            types = {"TIMESTAMP"}
            items = [v if isinstance(v, datetime) else datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
                     for v in items]
        if len(types) > 1:
            raise WarehouseError(f"query parameter @{name}: a list mixes types {sorted(types)}")
        elem = types.pop() if types else "STRING"
        return bigquery.ArrayQueryParameter(name, elem, items)
    v = _py(value)
    return bigquery.ScalarQueryParameter(name, _scalar_type(v) if v is not None else "STRING", v)


def _py(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, np.datetime64):
        return pd.Timestamp(v).to_pydatetime()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _scalar_type(v: Any) -> str:
    if isinstance(v, bool):
        return "BOOL"
    if isinstance(v, int):
        return "INT64"
    if isinstance(v, float):
        return "FLOAT64"
    if isinstance(v, Decimal):
        return "NUMERIC"
    if isinstance(v, datetime):
        return "TIMESTAMP"
    if isinstance(v, date):
        return "DATE"
    if isinstance(v, str):
        return "STRING"
    if isinstance(v, bytes):
        return "BYTES"
    raise WarehouseError(f"cannot send a {type(v).__name__} as a BigQuery query parameter")


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Query results typed like DuckDB's ``.df()``: int64/Int64, float64, bool/boolean, datetime64[us]."""
    data = {}
    for name, col in zip(table.column_names, table.columns):
        t = col.type
        nulls = col.null_count > 0
        if pa.types.is_integer(t):
            s = col.to_pandas(types_mapper={t: pd.Int64Dtype()}.get) if nulls else col.to_pandas().astype("int64")
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            s = col.to_pandas().astype("float64")
        elif pa.types.is_boolean(t):
            s = col.to_pandas(types_mapper={t: pd.BooleanDtype()}.get) if nulls else col.to_pandas().astype("bool")
        elif pa.types.is_date(t):
            s = col.cast(pa.timestamp("us")).to_pandas().astype("datetime64[us]")
        elif pa.types.is_timestamp(t):
            s = col.to_pandas()
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            s = s.astype("datetime64[us]")
        else:
            s = col.to_pandas()
        data[name] = pd.Series(s).reset_index(drop=True)
    return pd.DataFrame(data, columns=table.column_names)
