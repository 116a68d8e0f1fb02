"""The loopback server's state: datasets, tables and jobs, executed on one DuckDB database.

Every BigQuery dataset is a DuckDB schema of the same name (the project is stripped, so a
server holds one namespace of datasets); a table's BigQuery metadata (schema, time
partitioning, clustering, ``requirePartitionFilter``, expiration, labels) is kept beside it
in ``__bqserver.tables``. SQL arrives as BigQuery Standard SQL and reaches DuckDB through
the same sqlglot translation the DuckDB backend uses (``nbcore.sqlfiles.to_duckdb``).

Before a query runs, the server does what BigQuery does before it bills: it resolves every
table (unknown dataset or table: 404), checks parameters (missing or malformed: 400),
refuses a scan of a table that requires a partition filter without one, estimates the
bytes scanned (see ``analysis``) and refuses the job when the bytes billed would exceed
``maximumBytesBilled``. Billing follows on-demand rules: bytes rounded up to whole MiB with
a minimum of ``min_bytes_per_table`` (10 MiB, as BigQuery) per table referenced.

A script (several statements) runs statement by statement; ``BEGIN TRANSACTION`` ..
``COMMIT TRANSACTION`` is a DuckDB transaction, rolled back if any statement fails or the
script ends without committing.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from nbcore.sqlfiles import SqlFileError, to_duckdb

from .analysis import Scan, parameter_types, plan_scans, temporal_mismatch, written_table
from .errors import BQError, not_found
from .types import FIXED_BYTES, bq_field_for_duck, decode_parameters, duck_type_for, encode_value, legacy

MiB = 1024 * 1024
_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_TABLE_ID = re.compile(r"^[A-Za-z0-9_$-]{1,1024}$")
META = "__bqserver"
RESULT_CACHE = 64


def _now_ms() -> str:
    return str(int(time.time() * 1000))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class TableMeta:
    project: str
    dataset: str
    table_id: str
    resource: dict

    @property
    def fields(self) -> list[dict]:
        return self.resource.get("schema", {}).get("fields", [])

    @property
    def column_names(self) -> list[str]:
        return [f["name"] for f in self.fields]

    @property
    def partition_field(self) -> Optional[str]:
        return (self.resource.get("timePartitioning") or {}).get("field")

    @property
    def require_partition_filter(self) -> bool:
        return bool(
            self.resource.get("requirePartitionFilter")
            or (self.resource.get("timePartitioning") or {}).get("requirePartitionFilter")
        )

    @property
    def duck(self) -> str:
        return f"{_q(self.dataset)}.{_q(self.table_id)}"

    @property
    def full_name(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table_id}"

    @property
    def expired(self) -> bool:
        exp_ms = self.resource.get("expirationTime")
        return bool(exp_ms) and int(exp_ms) < time.time() * 1000


@dataclass
class Job:
    project: str
    job_id: str
    resource: dict
    error: Optional[BQError] = None
    result: Optional[pa.Table] = None          # rows of a SELECT
    result_table: Optional[TableMeta] = None   # or the destination table holding them
    schema: Optional[list[dict]] = None
    num_dml_affected_rows: Optional[int] = None
    parent_job_id: Optional[str] = None

    @property
    def has_rows(self) -> bool:
        return self.schema is not None


@dataclass
class Session:
    """A BigQuery session: its own DuckDB connection, so a transaction can span jobs."""

    session_id: str
    con: duckdb.DuckDBPyConnection
    in_tx: bool = False


@dataclass
class Prepared:
    stmt: exp.Expression
    tables: list[TableMeta] = field(default_factory=list)
    scans: list[Scan] = field(default_factory=list)
    bytes: int = 0


class Engine:
    """Catalog + executor. All DuckDB access is serialized by one lock."""

    def __init__(self, path: str = ":memory:", *, location: str = "US", min_bytes_per_table: int = 10 * MiB,
                 page_rows: int = 20_000, job_latency_s: float = 0.0, checker: Any = None):
        self.path = path
        self.job_latency_s = float(job_latency_s)  # added to every job (not dry runs): what a real job waits
        self.checker = checker                      # a zetacheck.ZetaSQLChecker, or None
        self.job_counts: dict[str, int] = {"query": 0, "load": 0, "dry_run": 0, "failed": 0, "injected": 0}
        self.faults: list[dict] = []                # transient errors to inject, see inject()
        self.location = location
        self.min_bytes_per_table = int(min_bytes_per_table)
        self.page_rows = page_rows
        self.con = duckdb.connect(path)
        self._sql("SET TimeZone = 'UTC'")
        self.lock = threading.RLock()
        self.datasets: dict[tuple[str, str], dict] = {}
        self.tables: dict[tuple[str, str, str], TableMeta] = {}
        self.jobs: dict[tuple[str, str], Job] = {}
        self.job_order: list[tuple[str, str]] = []
        self.uploads: dict[str, dict] = {}
        self.sessions: dict[str, Session] = {}
        self._load_catalog()

    def _sql(self, sql: str, params: Any = None, con: Optional[duckdb.DuckDBPyConnection] = None) -> list[tuple]:
        """Run one DuckDB statement to completion (DuckDB 2 wants every result consumed)."""
        con = con or self.con
        return con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()

    # -- persistence of the catalog ----------------------------------------------
    def _load_catalog(self) -> None:
        self._sql(f"CREATE SCHEMA IF NOT EXISTS {META}")
        self._sql(f"CREATE TABLE IF NOT EXISTS {META}.datasets (project VARCHAR, dataset VARCHAR, resource VARCHAR)")
        self._sql(f"CREATE TABLE IF NOT EXISTS {META}.tables (project VARCHAR, dataset VARCHAR, table_id VARCHAR, resource VARCHAR)")
        for project, dataset, res in self._sql(f"SELECT * FROM {META}.datasets"):
            self.datasets[(project, dataset)] = json.loads(res)
        for project, dataset, table_id, res in self._sql(f"SELECT * FROM {META}.tables"):
            self.tables[(project, dataset, table_id)] = TableMeta(project, dataset, table_id, json.loads(res))

    def _save_dataset(self, project: str, dataset: str, resource: Optional[dict]) -> None:
        self._sql(f"DELETE FROM {META}.datasets WHERE project = ? AND dataset = ?", [project, dataset])
        if resource is not None:
            self._sql(f"INSERT INTO {META}.datasets VALUES (?, ?, ?)", [project, dataset, json.dumps(resource)])

    def _save_table(self, meta: TableMeta, delete: bool = False) -> None:
        self._sql(
            f"DELETE FROM {META}.tables WHERE project = ? AND dataset = ? AND table_id = ?",
            [meta.project, meta.dataset, meta.table_id],
        )
        if not delete:
            self._sql(
                f"INSERT INTO {META}.tables VALUES (?, ?, ?, ?)",
                [meta.project, meta.dataset, meta.table_id, json.dumps(meta.resource)],
            )

    # -- datasets -------------------------------------------------------------------
    def _dataset(self, project: str, dataset: str) -> dict:
        res = self.datasets.get((project, dataset))
        if res is None:
            raise not_found("Dataset", f"{project}:{dataset}", self.location)
        return res

    def get_dataset(self, project: str, dataset: str) -> dict:
        with self.lock:
            return self._dataset(project, dataset)

    def list_datasets(self, project: str) -> dict:
        with self.lock:
            items = [
                {"kind": "bigquery#dataset", "id": r["id"], "datasetReference": r["datasetReference"], "location": r["location"]}
                for (p, _), r in sorted(self.datasets.items()) if p == project
            ]
        return {"kind": "bigquery#datasetList", "datasets": items}

    def insert_dataset(self, project: str, body: dict) -> dict:
        ref = body.get("datasetReference") or {}
        dataset = ref.get("datasetId") or ""
        if not _ID.match(dataset):
            raise BQError(400, "invalid", f"Invalid dataset ID {dataset!r}: use letters, digits and underscores")
        with self.lock:
            if (project, dataset) in self.datasets or any(d == dataset for _, d in self.datasets):
                raise BQError(409, "duplicate", f"Already Exists: Dataset {project}:{dataset}")
            self._sql(f"CREATE SCHEMA {_q(dataset)}")
            now = _now_ms()
            res = {
                "kind": "bigquery#dataset",
                "id": f"{project}:{dataset}",
                "datasetReference": {"projectId": project, "datasetId": dataset},
                "location": body.get("location") or self.location,
                "labels": body.get("labels") or {},
                "creationTime": now,
                "lastModifiedTime": now,
                "etag": uuid.uuid4().hex[:16],
            }
            for k in ("description", "friendlyName", "defaultTableExpirationMs"):
                if body.get(k) is not None:
                    res[k] = body[k]
            self.datasets[(project, dataset)] = res
            self._save_dataset(project, dataset, res)
            return res

    def delete_dataset(self, project: str, dataset: str, delete_contents: bool) -> None:
        with self.lock:
            self._dataset(project, dataset)
            tables = [k for k in self.tables if k[0] == project and k[1] == dataset]
            if tables and not delete_contents:
                raise BQError(400, "resourceInUse", f"Dataset {project}:{dataset} is still in use")
            self._sql(f"DROP SCHEMA {_q(dataset)} CASCADE")
            for k in tables:
                self._save_table(self.tables.pop(k), delete=True)
            del self.datasets[(project, dataset)]
            self._save_dataset(project, dataset, None)

    # -- tables -----------------------------------------------------------------------
    def _table(self, project: str, dataset: str, table_id: str) -> TableMeta:
        self._dataset(project, dataset)
        meta = self.tables.get((project, dataset, table_id))
        if meta is not None and meta.expired:
            self._drop_table(meta)
            meta = None
        if meta is None:
            raise not_found("Table", f"{project}:{dataset}.{table_id}", self.location)
        return meta

    def _drop_table(self, meta: TableMeta) -> None:
        self._sql(f"DROP TABLE IF EXISTS {meta.duck}")
        self.tables.pop((meta.project, meta.dataset, meta.table_id), None)
        self._save_table(meta, delete=True)

    def _validate_fields(self, fields: list[dict], where: str) -> list[dict]:
        out, seen = [], set()
        for f in fields:
            name = f.get("name") or ""
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,299}$", name):
                raise BQError(400, "invalid", f"{where}: invalid field name {name!r}")
            if name.lower() in seen:
                raise BQError(400, "invalid", f"{where}: duplicate field name {name!r}")
            seen.add(name.lower())
            g = {"name": name, "type": legacy(f.get("type") or "STRING"), "mode": (f.get("mode") or "NULLABLE").upper()}
            duck_type_for(g)  # rejects unknown types
            if f.get("description"):
                g["description"] = f["description"]
            out.append(g)
        return out

    def _create_table(self, project: str, dataset: str, table_id: str, body: dict, *, duck_ddl: bool = True) -> TableMeta:
        if not _TABLE_ID.match(table_id):
            raise BQError(400, "invalid", f"Invalid table ID {table_id!r}")
        where = f"table {project}:{dataset}.{table_id}"
        fields = self._validate_fields((body.get("schema") or {}).get("fields") or [], where)
        names = {f["name"].lower(): f for f in fields}
        tp = body.get("timePartitioning")
        if tp:
            tp = dict(tp)
            tp.setdefault("type", "DAY")
            col = tp.get("field")
            if col:
                f = names.get(col.lower())
                if f is None or f["type"] not in ("DATE", "TIMESTAMP", "DATETIME"):
                    raise BQError(400, "invalid", f"{where}: the partitioning field {col!r} must be a top-level DATE, TIMESTAMP or DATETIME column")
        cl = body.get("clustering")
        if cl:
            cols = cl.get("fields") or []
            if len(cols) > 4:
                raise BQError(400, "invalid", f"{where}: at most 4 clustering fields, got {len(cols)}")
            for c in cols:
                f = names.get(c.lower())
                if f is None:
                    raise BQError(400, "invalid", f"{where}: the clustering field {c!r} is not in the schema")
                if f["type"] in ("FLOAT", "RECORD", "JSON") or f["mode"] == "REPEATED":
                    raise BQError(400, "invalid", f"{where}: the clustering field {c!r} has a type that cannot cluster")
        if duck_ddl:
            cols = ", ".join(
                f"{_q(f['name'])} {duck_type_for(f)}" + (" NOT NULL" if f["mode"] == "REQUIRED" else "") for f in fields
            )
            self._sql(f"CREATE TABLE {_q(dataset)}.{_q(table_id)} ({cols})")
        now = _now_ms()
        res = {
            "kind": "bigquery#table",
            "id": f"{project}:{dataset}.{table_id}",
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table_id},
            "schema": {"fields": fields},
            "type": "TABLE",
            "location": self.datasets[(project, dataset)]["location"],
            "creationTime": now,
            "lastModifiedTime": now,
            "etag": uuid.uuid4().hex[:16],
            "labels": body.get("labels") or {},
        }
        if tp:
            res["timePartitioning"] = tp
        if cl:
            res["clustering"] = {"fields": list(cl.get("fields") or [])}
        if body.get("requirePartitionFilter"):
            if not tp:
                raise BQError(400, "invalid", f"{where}: requirePartitionFilter needs a partitioned table")
            res["requirePartitionFilter"] = True
        for k in ("description", "friendlyName", "expirationTime"):
            if body.get(k) is not None:
                res[k] = body[k]
        meta = TableMeta(project, dataset, table_id, res)
        self.tables[(project, dataset, table_id)] = meta
        self._save_table(meta)
        return meta

    def insert_table(self, project: str, dataset: str, body: dict) -> dict:
        ref = body.get("tableReference") or {}
        table_id = ref.get("tableId") or ""
        with self.lock:
            self._dataset(project, dataset)
            existing = self.tables.get((project, dataset, table_id))
            if existing is not None and existing.expired:
                self._drop_table(existing)
                existing = None
            if existing is not None:
                raise BQError(409, "duplicate", f"Already Exists: Table {project}:{dataset}.{table_id}")
            meta = self._create_table(project, dataset, table_id, body)
            return self._table_resource(meta)

    def _table_resource(self, meta: TableMeta) -> dict:
        res = dict(meta.resource)
        n, nbytes = self._table_size(meta)
        res["numRows"] = str(n)
        res["numBytes"] = str(nbytes)
        return res

    def _table_size(self, meta: TableMeta) -> tuple[int, int]:
        scan = Scan(meta=meta, alias=meta.table_id, all_columns=True)
        return self._scan_size(scan, {})

    def get_table(self, project: str, dataset: str, table_id: str) -> dict:
        with self.lock:
            return self._table_resource(self._table(project, dataset, table_id))

    def patch_table(self, project: str, dataset: str, table_id: str, body: dict) -> dict:
        with self.lock:
            meta = self._table(project, dataset, table_id)
            for k in ("description", "friendlyName", "expirationTime", "labels", "requirePartitionFilter"):
                if k in body:
                    if body[k] is None:
                        meta.resource.pop(k, None)
                    else:
                        meta.resource[k] = body[k]
            if "schema" in body:
                new = self._validate_fields(body["schema"].get("fields") or [], f"table {meta.full_name}")
                old = {f["name"] for f in meta.fields}
                for f in new:
                    if f["name"] not in old:
                        self._sql(f"ALTER TABLE {meta.duck} ADD COLUMN {_q(f['name'])} {duck_type_for(f)}")
                missing = old - {f["name"] for f in new}
                if missing:
                    raise BQError(400, "invalid", f"Provided Schema does not match Table {meta.full_name}. Field(s) {sorted(missing)} are missing")
                meta.resource["schema"] = {"fields": new}
            meta.resource["lastModifiedTime"] = _now_ms()
            meta.resource["etag"] = uuid.uuid4().hex[:16]
            self._save_table(meta)
            return self._table_resource(meta)

    def delete_table(self, project: str, dataset: str, table_id: str) -> None:
        with self.lock:
            self._drop_table(self._table(project, dataset, table_id))

    def list_tables(self, project: str, dataset: str) -> dict:
        with self.lock:
            self._dataset(project, dataset)
            items = []
            for (p, d, t), meta in sorted(self.tables.items()):
                if p == project and d == dataset and not meta.expired:
                    r = meta.resource
                    item = {"kind": "bigquery#table", "id": r["id"], "tableReference": r["tableReference"], "type": "TABLE",
                            "creationTime": r["creationTime"]}
                    for k in ("timePartitioning", "clustering", "labels", "expirationTime"):
                        if r.get(k):
                            item[k] = r[k]
                    items.append(item)
        return {"kind": "bigquery#tableList", "tables": items, "totalItems": len(items)}

    def table_rows(self, project: str, dataset: str, table_id: str, start: int, max_results: Optional[int],
                   int64_ts: bool) -> dict:
        """tabledata.list: a page of a table's rows."""
        with self.lock:
            meta = self._table(project, dataset, table_id)
            total = self._sql(f"SELECT COUNT(*) FROM {meta.duck}")[0][0]
            n = self.page_rows if max_results is None else max_results
            page = self.con.sql(f"SELECT * FROM {meta.duck} LIMIT {int(n)} OFFSET {int(start)}").to_arrow_table()
        body = {"kind": "bigquery#tableDataList", "totalRows": str(total), "rows": _encode_rows(page, meta.fields, int64_ts)}
        if start + page.num_rows < total and n > 0:
            body["pageToken"] = str(start + page.num_rows)
        return body

    # -- SQL preparation ----------------------------------------------------------------
    def _parse(self, sql: str) -> list[exp.Expression]:
        """Parsed statements; cached by text (jobs repeat the same SQL with other parameters),
        so they are never modified in place."""
        statements = _parse_cached(sql)
        if isinstance(statements, BQError):
            raise statements
        return list(statements)

    def _prepare(self, project: str, stmt: exp.Expression, default_dataset: Optional[dict], params: dict,
                 param_types: Optional[dict[str, str]] = None) -> Prepared:
        if default_dataset and any(t.name and not t.args.get("db") for t in stmt.find_all(exp.Table)):
            stmt = stmt.copy()  # about to be qualified with the default dataset: leave the cached one alone
        prep = Prepared(stmt=stmt)
        ctes = {c.alias_or_name for c in stmt.find_all(exp.CTE)}
        creating = stmt.this if isinstance(stmt, exp.Create) else None
        dropping = stmt.this if isinstance(stmt, exp.Drop) else None
        resolved: dict[int, TableMeta] = {}
        for tbl in stmt.find_all(exp.Table):
            if not tbl.name:
                continue
            if not tbl.args.get("db"):
                if tbl.name in ctes:
                    continue
                if default_dataset:
                    tbl.set("db", exp.to_identifier(default_dataset.get("datasetId")))
                else:
                    raise BQError(400, "invalidQuery",
                                  f'Table "{tbl.name}" must be qualified with a dataset (e.g. dataset.table).')
            proj = tbl.catalog or project
            if "INFORMATION_SCHEMA" in tbl.name.upper() or tbl.db.upper() == "INFORMATION_SCHEMA":
                raise BQError(501, "notImplemented", "INFORMATION_SCHEMA is not served by the loopback server")
            self._dataset(proj, tbl.db)
            if tbl is creating or (isinstance(creating, exp.Schema) and tbl is creating.this):
                continue
            if tbl is dropping:
                if (proj, tbl.db, tbl.name) in self.tables or stmt.args.get("exists"):
                    continue
            meta = self._table(proj, tbl.db, tbl.name)
            resolved[id(tbl)] = meta
            if meta not in prep.tables:
                prep.tables.append(meta)
        for p in stmt.find_all(exp.Parameter):
            name = p.name
            if name not in params:
                raise BQError(400, "invalidQuery", f"Query parameter '{name}' not found")
        if param_types:
            column_types: dict[str, set[str]] = {}
            for m in prep.tables:
                for f in m.fields:
                    t = f["type"].upper()
                    column_types.setdefault(f["name"].lower(), set()).add("ARRAY" if f.get("mode") == "REPEATED" else t)
            clash = temporal_mismatch(stmt, column_types, param_types)
            if clash:
                raise BQError(400, "invalidQuery", clash)
        prep.scans = plan_scans(stmt, lambda t: resolved.get(id(t)))
        for scan in prep.scans:
            m = scan.meta
            if m.require_partition_filter and not scan.pruning:
                raise BQError(
                    400, "invalidQuery",
                    f"Cannot query over table '{m.full_name}' without a filter over column(s) "
                    f"'{m.partition_field}' that can be used for partition elimination",
                )
        return prep

    def _duck_sql(self, stmt: exp.Expression) -> str:
        """BigQuery text without projects, translated by the DuckDB backend's sqlglot path."""
        cached = stmt.meta.get("duck_sql")
        if cached is not None:
            return cached
        s = stmt.copy()
        for tbl in s.find_all(exp.Table):
            if tbl.args.get("catalog") is not None:
                tbl.set("catalog", None)
        try:
            duck = to_duckdb(s.sql(dialect="bigquery"))
        except SqlFileError as e:
            raise BQError(400, "invalidQuery", str(e)) from None
        stmt.meta["duck_sql"] = duck
        return duck

    # -- bytes ------------------------------------------------------------------------------
    def _scan_size(self, scan: Scan, params: dict, con: Optional[duckdb.DuckDBPyConnection] = None) -> tuple[int, int]:
        """(rows, bytes) of the columns a scan reads, in the partitions it does not prune."""
        meta = scan.meta
        cols = meta.fields if scan.all_columns else [f for f in meta.fields if f["name"] in scan.columns]
        parts = ["COUNT(*)"]
        for f in cols:
            c = _q(f["name"])
            if f.get("mode") == "REPEATED":
                parts.append(f"COALESCE(SUM(len({c})), 0) * 8")
            elif f["type"] in ("STRING", "JSON", "GEOGRAPHY"):
                parts.append(f"COALESCE(SUM(strlen({c}) + 2), 0)")
            elif f["type"] == "BYTES":
                parts.append(f"COALESCE(SUM(octet_length({c}) + 2), 0)")
            else:
                parts.append(f"{FIXED_BYTES.get(f['type'], 8)} * COUNT({c})")
        where, bound = "", {}
        if scan.pruning:
            cond = " AND ".join(p.sql(dialect="bigquery") for p in scan.pruning)
            bq = f"SELECT 1 FROM `{meta.dataset}`.`{meta.table_id}` WHERE {cond}"
            duck = to_duckdb(bq)
            where = duck[duck.upper().index(" WHERE ") :]
            names = {p.name for c in scan.pruning for p in c.find_all(exp.Parameter)}
            bound = {k: params[k] for k in names}
        row = self._sql(f"SELECT {', '.join(parts)} FROM {meta.duck}{where}", bound or None, con)[0]
        return int(row[0]), int(sum(int(v or 0) for v in row[1:]))

    def _billed(self, per_table: dict[str, int]) -> int:
        if not per_table:
            return 0
        total = 0
        for b in per_table.values():
            total += max(self.min_bytes_per_table, math.ceil(b / MiB) * MiB)
        return max(total, self.min_bytes_per_table)

    # -- transient errors ------------------------------------------------------------------
    def inject(self, reason: str, *, times: int = 1, match: str = "") -> None:
        """Make the next *times* query jobs whose text contains *match* fail as BigQuery's
        transient errors do: ``rateLimitExceeded`` (too many jobs or DML per table) or
        ``concurrentUpdate`` (a transaction aborted by a concurrent writer); or, to test what
        is not retried, ``invalidQuery``. The job is
        created, fails without running, and reports the error, as on BigQuery."""
        messages = {
            "rateLimitExceeded": "Exceeded rate limits: too many table update operations for this table.",
            "concurrentUpdate": "Transaction is aborted due to concurrent update against table; "
                                "please retry the transaction.",
            "invalidQuery": "Query error: injected failure (not transient)",  # a failure that is not retried
        }
        if reason not in messages:
            raise ValueError(f"inject: reason must be one of {sorted(messages)}, not {reason!r}")
        with self.lock:
            self.faults.append({"reason": reason, "message": messages[reason], "times": int(times), "match": match})

    def _fault_for(self, config: dict) -> Optional[BQError]:
        if "query" not in config:
            return None
        text = config["query"].get("query") or ""
        for f in self.faults:
            if f["times"] > 0 and f["match"] in text:
                f["times"] -= 1
                self.job_counts["injected"] += 1
                # BigQuery reports a concurrent-update abort as a 400 with reason "invalidQuery"
                # on some paths; the loopback uses its own reason so the retry rule is explicit.
                code = 403 if f["reason"] == "rateLimitExceeded" else 400
                return BQError(code, f["reason"], f["message"])
        return None

    # -- jobs -------------------------------------------------------------------------------
    def insert_job(self, project: str, body: dict, data: Optional[bytes] = None) -> dict:
        ref = dict(body.get("jobReference") or {})
        job_id = ref.get("jobId") or f"job_{uuid.uuid4().hex}"
        config = body.get("configuration") or {}
        dry_run = bool(config.get("dryRun"))
        if self.job_latency_s and not dry_run:
            time.sleep(self.job_latency_s)  # outside the lock: jobs of other clients wait in parallel
        with self.lock:
            if (project, job_id) in self.jobs:
                raise BQError(409, "duplicate", f"Already Exists: Job {project}:{self.location}.{job_id}")
            ref.update(projectId=project, jobId=job_id, location=ref.get("location") or self.location)
            now = _now_ms()
            resource = {
                "kind": "bigquery#job",
                "id": f"{project}:{self.location}.{job_id}",
                "jobReference": ref,
                "configuration": config,
                "status": {"state": "RUNNING"},
                "statistics": {"creationTime": now, "startTime": now},
                "user_email": "loopback@example.invalid",
            }
            job = Job(project, job_id, resource)
            fault = None if dry_run else self._fault_for(config)
            if fault is not None:
                config.setdefault("jobType", "QUERY" if "query" in config else "LOAD")
                self._finish(job, fault)
            elif "query" in config:
                config.setdefault("jobType", "QUERY")
                self._run_query_job(job, dry_run)
            elif "load" in config:
                config.setdefault("jobType", "LOAD")
                if dry_run:
                    raise BQError(400, "invalid", "Load jobs cannot be dry runs")
                self._run_load_job(job, data or b"")
            else:
                raise BQError(501, "notImplemented", f"Job type {sorted(config)} is not supported by the loopback server")
            resource["statistics"]["endTime"] = _now_ms()
            self.job_counts["dry_run" if dry_run else config["jobType"].lower()] += 1
            if job.error is not None:
                self.job_counts["failed"] += 1
            if dry_run:
                resource["status"] = {"state": "DONE"}
                return resource  # dry runs are not stored, as on BigQuery
            self.jobs[(project, job_id)] = job
            self.job_order.append((project, job_id))
            self._trim_results()
            out = json.loads(json.dumps(resource))
            out["status"] = {"state": "RUNNING"}  # the client polls jobs.get for DONE
            return out

    def _finish(self, job: Job, err: Optional[BQError] = None) -> None:
        job.error = err
        status: dict[str, Any] = {"state": "DONE"}
        if err is not None:
            status["errorResult"] = err.error_proto()
            status["errors"] = [err.error_proto()]
        job.resource["status"] = status

    def _run_query_job(self, job: Job, dry_run: bool) -> None:
        config = job.resource["configuration"]
        qc = config["query"]
        try:
            if qc.get("useLegacySql") is True:
                raise BQError(400, "invalidQuery", "Legacy SQL is not supported by the loopback server; set useLegacySql=false")
            session = self._session_for(qc, dry_run)
            if session is not None:
                job.resource["statistics"]["sessionInfo"] = {"sessionId": session.session_id}
            stats = self._query(job, qc, dry_run, session)
        except BQError as err:
            if dry_run:
                raise
            self._finish(job, err)
            return
        job.resource["statistics"].update(stats)
        self._finish(job)

    def _session_for(self, qc: dict, dry_run: bool) -> Optional[Session]:
        props = {p.get("key"): p.get("value") for p in qc.get("connectionProperties") or []}
        sid = props.get("session_id")
        if qc.get("createSession") and not dry_run:
            if sid:
                raise BQError(400, "invalid", "createSession cannot be combined with a session_id connection property")
            session = Session(f"session_{uuid.uuid4().hex}", self.con.cursor())
            self._sql("SET TimeZone = 'UTC'", con=session.con)
            self.sessions[session.session_id] = session
            return session
        if sid:
            session = self.sessions.get(sid)
            if session is None:
                raise BQError(400, "invalid", f"Session {sid} has expired or does not exist")
            return session
        return None

    def _abort_session(self, session: Optional[Session]) -> None:
        if session is None:
            raise BQError(400, "invalidQuery", "BQ.ABORT_SESSION() must run inside a session")
        if session.in_tx:
            self._sql("ROLLBACK", con=session.con)
            session.in_tx = False
        session.con.close()
        self.sessions.pop(session.session_id, None)

    def _query(self, job: Job, qc: dict, dry_run: bool, session: Optional[Session]) -> dict:
        project = job.project
        con = session.con if session is not None else self.con
        text = qc.get("query") or ""
        if re.match(r"^\s*CALL\s+BQ\.ABORT_SESSION\s*\(\s*\)\s*;?\s*$", text, re.I):
            if not dry_run:
                self._abort_session(session)
            return {"totalBytesProcessed": "0", "query": {"statementType": "CALL", "totalBytesProcessed": "0",
                                                         "totalBytesBilled": "0"}}
        params = decode_parameters(qc)
        statements = self._parse(text)
        ptypes = parameter_types(qc)
        prepared = [self._prepare(project, s, qc.get("defaultDataset"), params, ptypes) for s in statements]
        if self.checker is not None:
            referenced = {(m.project, m.dataset, m.table_id): m.fields for prep in prepared for m in prep.tables}
            rejected = self.checker.check(text, referenced, qc.get("queryParameters") or [])
            if rejected:
                raise BQError(400, "invalidQuery", f"ZetaSQL rejected the query: {rejected}")
        per_table: dict[str, int] = {}
        referenced: list[TableMeta] = []
        try:
            for prep in prepared:
                for m in prep.tables:
                    if m not in referenced:
                        referenced.append(m)
                for scan in prep.scans:
                    _, b = self._scan_size(scan, params, con)
                    prep.bytes += b
                    per_table[scan.meta.full_name] = per_table.get(scan.meta.full_name, 0) + b
        except duckdb.Error as e:
            raise BQError(400, "invalidQuery", f"Query error: {e}") from None
        processed = sum(p.bytes for p in prepared)
        billed = self._billed(per_table)
        script = len(prepared) > 1
        stype = "SCRIPT" if script else _statement_type(prepared[0].stmt)
        query_stats: dict[str, Any] = {
            "totalBytesProcessed": str(processed),
            "estimatedBytesProcessed": str(processed),
            "totalBytesBilled": "0" if dry_run else str(billed),
            "statementType": stype,
            "cacheHit": False,
            "referencedTables": [m.resource["tableReference"] for m in referenced],
            "billingTier": 1,
        }
        stats = {"totalBytesProcessed": str(processed), "query": query_stats}
        if dry_run:
            if not script and isinstance(prepared[0].stmt, exp.Query):
                try:
                    query_stats["schema"] = {"fields": self._describe(prepared[0].stmt, params, con)}
                except duckdb.Error as e:
                    raise BQError(400, "invalidQuery", f"Query error: {e}") from None
            return stats
        cap = qc.get("maximumBytesBilled")
        if cap not in (None, "") and billed > int(cap):
            raise BQError(400, "bytesBilledLimitExceeded",
                          f"Query exceeded limit for bytes billed: {int(cap)}. {billed} or higher required.")
        self._execute(job, prepared, params, qc, script, session)
        if job.num_dml_affected_rows is not None:
            query_stats["numDmlAffectedRows"] = str(job.num_dml_affected_rows)
        if job.schema is not None:
            query_stats["schema"] = {"fields": job.schema}
        if script:
            stats["numChildJobs"] = str(len(prepared))
        return stats

    def _describe(self, stmt: exp.Expression, params: dict, con) -> list[dict]:
        duck = self._duck_sql(stmt)
        rel = con.sql(duck, params=_bind(stmt, params) or None)
        return [bq_field_for_duck(n, t) for n, t in zip(rel.columns, rel.types)]

    def _execute(self, job: Job, prepared: list[Prepared], params: dict, qc: dict, script: bool,
                 session: Optional[Session]) -> None:
        con = session.con if session is not None else self.con
        in_tx = session.in_tx if session is not None else False
        dest = qc.get("destinationTable")
        last_result: Optional[tuple[pa.Table, list[dict]]] = None
        affected: Optional[int] = None
        try:
            for i, prep in enumerate(prepared):
                stmt = prep.stmt
                child_stats: dict[str, Any] = {"statementType": _statement_type(stmt), "totalBytesProcessed": str(prep.bytes)}
                if isinstance(stmt, exp.Transaction):
                    if in_tx:
                        raise BQError(400, "invalidQuery", "Transaction already started; nested transactions are not supported")
                    self._sql("BEGIN TRANSACTION", con=con)
                    in_tx = True
                elif isinstance(stmt, exp.Commit):
                    if not in_tx:
                        raise BQError(400, "invalidQuery", "COMMIT TRANSACTION without BEGIN TRANSACTION")
                    self._sql("COMMIT", con=con)
                    in_tx = False
                elif isinstance(stmt, exp.Rollback):
                    if not in_tx:
                        raise BQError(400, "invalidQuery", "ROLLBACK TRANSACTION without BEGIN TRANSACTION")
                    self._sql("ROLLBACK", con=con)
                    in_tx = False
                elif isinstance(stmt, exp.Query):
                    duck = self._duck_sql(stmt)
                    if dest and i == len(prepared) - 1:
                        self._write_destination(job, dest, qc, duck, _bind(stmt, params), con)
                        last_result = None
                    else:
                        rel = con.sql(duck, params=_bind(stmt, params) or None)
                        fields = [bq_field_for_duck(n, t) for n, t in zip(rel.columns, rel.types)]
                        last_result = (rel.to_arrow_table(), fields)
                elif isinstance(stmt, (exp.Insert, exp.Delete, exp.Update, exp.Merge)):
                    if isinstance(stmt, (exp.Delete, exp.Update)) and stmt.args.get("where") is None:
                        raise BQError(400, "invalidQuery", f"{type(stmt).__name__.upper()} must have a WHERE clause")
                    duck = self._duck_sql(stmt)
                    rows = self._sql(duck, _bind(stmt, params) or None, con)
                    n = int(rows[0][0]) if rows else 0
                    affected = n
                    child_stats["numDmlAffectedRows"] = str(n)
                    target = written_table(stmt)
                    if target is not None:
                        meta = self.tables.get((target.catalog or job.project, target.db, target.name))
                        if meta is not None:
                            meta.resource["lastModifiedTime"] = _now_ms()
                elif isinstance(stmt, (exp.Create, exp.Drop)):
                    if in_tx:
                        raise BQError(400, "invalidQuery", "DDL on permanent tables is not allowed inside a transaction")
                    self._ddl(job.project, stmt, params, con)
                else:
                    raise BQError(501, "notImplemented",
                                  f"{type(stmt).__name__} statements are not supported by the loopback server")
                if script:
                    self._child_job(job, i, stmt, child_stats)
            if in_tx and session is None:  # a script that ends inside a transaction is rolled back
                self._sql("ROLLBACK", con=con)
                in_tx = False
        except BaseException as e:
            if in_tx:  # a failed statement rolls the whole transaction back (in a session too)
                self._sql("ROLLBACK", con=con)
                in_tx = False
            if session is not None:
                session.in_tx = False
            if isinstance(e, duckdb.Error):
                raise BQError(400, "invalidQuery", f"Query error: {e}") from None
            raise
        if session is not None:
            session.in_tx = in_tx
        if last_result is not None and isinstance(prepared[-1].stmt, exp.Query):
            job.result, job.schema = last_result
        if not script:
            job.num_dml_affected_rows = affected

    def _child_job(self, parent: Job, index: int, stmt: exp.Expression, stats: dict) -> None:
        job_id = f"script_job_{parent.job_id}_{index}"
        now = _now_ms()
        res = {
            "kind": "bigquery#job",
            "id": f"{parent.project}:{self.location}.{job_id}",
            "jobReference": {"projectId": parent.project, "jobId": job_id, "location": self.location},
            "configuration": {"jobType": "QUERY", "query": {"query": stmt.sql(dialect="bigquery")},
                              "labels": parent.resource["configuration"].get("labels", {})},
            "status": {"state": "DONE"},
            "statistics": {"creationTime": now, "startTime": now, "endTime": now, "parentJobId": parent.job_id,
                           "totalBytesProcessed": stats.get("totalBytesProcessed", "0"), "query": stats},
        }
        child = Job(parent.project, job_id, res, parent_job_id=parent.job_id)
        self.jobs[(parent.project, job_id)] = child
        self.job_order.append((parent.project, job_id))

    def _write_destination(self, job: Job, dest: dict, qc: dict, duck_sql: str, bound: dict, con) -> None:
        project, dataset, table_id = dest.get("projectId") or job.project, dest["datasetId"], dest["tableId"]
        self._dataset(project, dataset)
        write = (qc.get("writeDisposition") or "WRITE_EMPTY").upper()
        create = (qc.get("createDisposition") or "CREATE_IF_NEEDED").upper()
        meta = self.tables.get((project, dataset, table_id))
        if meta is not None and meta.expired:
            self._drop_table(meta)
            meta = None
        bound = bound or None
        rel = con.sql(duck_sql, params=bound)
        fields = [bq_field_for_duck(n, t) for n, t in zip(rel.columns, rel.types)]
        target = f"{_q(dataset)}.{_q(table_id)}"
        if meta is None:
            if create == "CREATE_NEVER":
                raise not_found("Table", f"{project}:{dataset}.{table_id}", self.location)
            self._sql(f"CREATE TABLE {target} AS {duck_sql}", bound, con)
            meta = self._create_table(project, dataset, table_id, {"schema": {"fields": fields}}, duck_ddl=False)
        elif write == "WRITE_TRUNCATE":
            self._sql(f"CREATE OR REPLACE TABLE {target} AS {duck_sql}", bound, con)
            meta.resource["schema"] = {"fields": fields}
            for k in ("timePartitioning", "clustering", "requirePartitionFilter"):
                meta.resource.pop(k, None)
            self._save_table(meta)
        elif write == "WRITE_APPEND":
            self._sql(f"INSERT INTO {target} {duck_sql}", bound, con)
        else:
            n = self._sql(f"SELECT COUNT(*) FROM {target}", con=con)[0][0]
            if n:
                raise BQError(409, "duplicate", f"Already Exists: Table {project}:{dataset}.{table_id}")
            self._sql(f"INSERT INTO {target} {duck_sql}", bound, con)
        job.result_table = meta
        job.schema = meta.fields
        job.resource["configuration"]["query"]["destinationTable"] = meta.resource["tableReference"]

    def _ddl(self, project: str, stmt: exp.Expression, params: dict, con) -> None:
        kind = (stmt.args.get("kind") or "").upper()
        target = stmt.this.this if isinstance(stmt.this, exp.Schema) else stmt.this
        if kind != "TABLE" or not isinstance(target, exp.Table):
            raise BQError(501, "notImplemented", f"{stmt.key.upper()} {kind} is not supported by the loopback server")
        proj, dataset, table_id = target.catalog or project, target.db, target.name
        if isinstance(stmt, exp.Drop):
            meta = self.tables.get((proj, dataset, table_id))
            if meta is None:
                if stmt.args.get("exists"):
                    return
                raise not_found("Table", f"{proj}:{dataset}.{table_id}", self.location)
            self._drop_table(meta)
            return
        existing = self.tables.get((proj, dataset, table_id))
        if existing is not None:
            if stmt.args.get("exists"):
                return
            if not stmt.args.get("replace"):
                raise BQError(409, "duplicate", f"Already Exists: Table {proj}:{dataset}.{table_id}")
            self._drop_table(existing)
        duck = self._duck_sql(stmt)
        self._sql(duck, _bind(stmt, params) or None, con)
        rel = con.sql(f"SELECT * FROM {_q(dataset)}.{_q(table_id)} LIMIT 0")
        fields = [bq_field_for_duck(n, t) for n, t in zip(rel.columns, rel.types)]
        self._create_table(proj, dataset, table_id, {"schema": {"fields": fields}}, duck_ddl=False)

    # -- loads ------------------------------------------------------------------------------
    def _run_load_job(self, job: Job, data: bytes) -> None:
        try:
            stats = self._load(job, data)
        except BQError as err:
            self._finish(job, err)
            return
        except duckdb.Error as e:
            self._finish(job, BQError(400, "invalid", f"Error while reading data: {e}"))
            return
        job.resource["statistics"]["load"] = stats
        self._finish(job)

    def _load(self, job: Job, data: bytes) -> dict:
        lc = job.resource["configuration"]["load"]
        dest = lc.get("destinationTable") or {}
        project, dataset, table_id = dest.get("projectId") or job.project, dest.get("datasetId"), dest.get("tableId")
        if not dataset or not table_id:
            raise BQError(400, "invalid", "Load job has no destinationTable")
        self._dataset(project, dataset)
        fmt = (lc.get("sourceFormat") or "CSV").upper()
        suffix = {"PARQUET": ".parquet", "NEWLINE_DELIMITED_JSON": ".json", "CSV": ".csv"}.get(fmt)
        if suffix is None:
            raise BQError(501, "notImplemented", f"sourceFormat {fmt} is not supported by the loopback server")
        fd, path = tempfile.mkstemp(suffix=suffix, prefix="bqload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if fmt == "PARQUET":
                reader = f"read_parquet('{path}')"
            elif fmt == "NEWLINE_DELIMITED_JSON":
                reader = f"read_json('{path}', format = 'newline_delimited')"
            else:
                skip = int(lc.get("skipLeadingRows") or 0)
                reader = f"read_csv('{path}', header = {'true' if skip else 'false'})"
            file_cols = self.con.sql(f"SELECT * FROM {reader} LIMIT 0").columns if data else []
            write = (lc.get("writeDisposition") or "WRITE_APPEND").upper()
            create = (lc.get("createDisposition") or "CREATE_IF_NEEDED").upper()
            meta = self.tables.get((project, dataset, table_id))
            if meta is not None and meta.expired:
                self._drop_table(meta)
                meta = None
            schema_fields = (lc.get("schema") or {}).get("fields")
            self._sql("BEGIN TRANSACTION")
            try:
                if meta is None:
                    if create == "CREATE_NEVER":
                        raise not_found("Table", f"{project}:{dataset}.{table_id}", self.location)
                    if not schema_fields:
                        if not lc.get("autodetect") or not data:
                            raise BQError(400, "invalid", "No schema specified on job or table.")
                        rel = self.con.sql(f"SELECT * FROM {reader} LIMIT 0")
                        schema_fields = [bq_field_for_duck(n, t) for n, t in zip(rel.columns, rel.types)]
                    body = {"schema": {"fields": schema_fields}}
                    for k in ("timePartitioning", "clustering"):
                        if lc.get(k):
                            body[k] = lc[k]
                    meta = self._create_table(project, dataset, table_id, body)
                elif write == "WRITE_TRUNCATE":
                    self._sql(f"DELETE FROM {meta.duck}")
                elif write == "WRITE_EMPTY":
                    if self._sql(f"SELECT COUNT(*) FROM {meta.duck}")[0][0]:
                        raise BQError(409, "duplicate", f"Already Exists: Table {meta.full_name}")
                types = {f["name"].lower(): f for f in meta.fields}
                unknown = [c for c in file_cols if c.lower() not in types]
                if unknown:
                    raise BQError(400, "invalid",
                                  f"Provided Schema does not match Table {project}:{dataset}.{table_id}. "
                                  f"Cannot add fields (field: {unknown[0]})")
                n = 0
                if file_cols:
                    cols = ", ".join(_q(types[c.lower()]["name"]) for c in file_cols)
                    casts = ", ".join(f"CAST({_q(c)} AS {duck_type_for(types[c.lower()])})" for c in file_cols)
                    n = self._sql(f"INSERT INTO {meta.duck} ({cols}) SELECT {casts} FROM {reader}")[0][0]
                self._sql("COMMIT")
            except BaseException:
                self._sql("ROLLBACK")
                raise
        finally:
            os.unlink(path)
        meta.resource["lastModifiedTime"] = _now_ms()
        return {"inputFiles": "1", "inputFileBytes": str(len(data)), "outputRows": str(int(n)), "badRecords": "0"}

    # -- job access -------------------------------------------------------------------------
    def _job(self, project: str, job_id: str) -> Job:
        job = self.jobs.get((project, job_id))
        if job is None:
            raise not_found("Job", f"{project}:{self.location}.{job_id}", self.location)
        return job

    def get_job(self, project: str, job_id: str) -> dict:
        with self.lock:
            return self._job(project, job_id).resource

    def cancel_job(self, project: str, job_id: str) -> dict:
        with self.lock:
            return {"kind": "bigquery#jobCancelResponse", "job": self._job(project, job_id).resource}

    def list_jobs(self, project: str, parent_job_id: Optional[str], state_filter: list[str],
                  min_created: Optional[int] = None, max_created: Optional[int] = None) -> dict:
        """jobs.list, newest first: top-level jobs, or the child jobs of ``parent_job_id`` (as BigQuery)."""
        with self.lock:
            jobs = [self.jobs[k] for k in reversed(self.job_order) if k[0] == project and k in self.jobs]
        jobs = [j for j in jobs if j.parent_job_id == parent_job_id] if parent_job_id else \
            [j for j in jobs if j.parent_job_id is None]
        items = []
        for j in jobs:
            r = j.resource
            state = r["status"]["state"]
            if state_filter and state.lower() not in [s.lower() for s in state_filter]:
                continue
            created = int(r["statistics"]["creationTime"])
            if (min_created is not None and created < min_created) or (max_created is not None and created > max_created):
                continue
            items.append({"kind": "bigquery#job", "id": r["id"], "jobReference": r["jobReference"], "state": state,
                          "configuration": r["configuration"], "statistics": r["statistics"], "status": r["status"],
                          "user_email": r.get("user_email")})
        return {"kind": "bigquery#jobList", "jobs": items}

    def query_results(self, project: str, job_id: str, start: int, max_results: Optional[int], int64_ts: bool) -> dict:
        """jobs.getQueryResults: completion, schema and a page of rows."""
        with self.lock:
            job = self._job(project, job_id)
            if job.error is not None:
                raise job.error
            stats = job.resource["statistics"]
            body: dict[str, Any] = {
                "kind": "bigquery#getQueryResultsResponse",
                "jobReference": job.resource["jobReference"],
                "jobComplete": True,
                "cacheHit": False,
                "totalBytesProcessed": stats.get("totalBytesProcessed", "0"),
            }
            if job.num_dml_affected_rows is not None:
                body["numDmlAffectedRows"] = str(job.num_dml_affected_rows)
            if not job.has_rows:
                return body
            body["schema"] = {"fields": job.schema}
            n = self.page_rows if max_results is None else int(max_results)
            if job.result_table is not None:
                meta = job.result_table
                total = self._sql(f"SELECT COUNT(*) FROM {meta.duck}")[0][0]
                page = self.con.sql(f"SELECT * FROM {meta.duck} LIMIT {n} OFFSET {int(start)}").to_arrow_table() if n else None
            else:
                if job.result is None:
                    raise BQError(404, "notFound", f"The results of job {job_id} are no longer available")
                total = job.result.num_rows
                page = job.result.slice(start, n) if n else None
        body["totalRows"] = str(total)
        if page is not None:
            body["rows"] = _encode_rows(page, job.schema, int64_ts)
            if start + page.num_rows < total:
                body["pageToken"] = str(start + page.num_rows)
        return body

    def _trim_results(self) -> None:
        with_rows = [k for k in self.job_order if self.jobs.get(k) is not None and self.jobs[k].result is not None]
        for k in with_rows[:-RESULT_CACHE]:
            self.jobs[k].result = None

    # -- test helpers ------------------------------------------------------------------------------
    def job_resources(self, include_children: bool = False) -> list[dict]:
        with self.lock:
            return [self.jobs[k].resource for k in self.job_order
                    if k in self.jobs and (include_children or self.jobs[k].parent_job_id is None)]


@lru_cache(maxsize=256)
def _parse_cached(sql: str):
    try:
        statements = tuple(s for s in sqlglot.parse(sql, read="bigquery") if s is not None)
    except sqlglot.errors.ParseError as e:
        return BQError(400, "invalidQuery", f"Syntax error: {e}")
    if not statements:
        return BQError(400, "invalidQuery", "Syntax error: the query is empty")
    return statements


def _bind(stmt: exp.Expression, params: dict) -> dict:
    """The parameters a statement uses (DuckDB refuses extra ones), from the parsed statement:
    its translation keeps every ``@name`` as ``$name``."""
    names = {p.name for p in stmt.find_all(exp.Parameter)}
    return {k: v for k, v in params.items() if k in names}


def _statement_type(stmt: exp.Expression) -> str:
    if isinstance(stmt, exp.Query):
        return "SELECT"
    if isinstance(stmt, exp.Create):
        return "CREATE_TABLE_AS_SELECT" if stmt.expression is not None else "CREATE_TABLE"
    if isinstance(stmt, exp.Drop):
        return "DROP_TABLE"
    if isinstance(stmt, exp.Transaction):
        return "BEGIN_TRANSACTION"
    if isinstance(stmt, exp.Commit):
        return "COMMIT_TRANSACTION"
    if isinstance(stmt, exp.Rollback):
        return "ROLLBACK_TRANSACTION"
    return type(stmt).__name__.upper()


def _encode_rows(page: pa.Table, fields: list[dict], int64_ts: bool) -> list[dict]:
    columns = [page.column(i).to_pylist() for i in range(page.num_columns)]
    out = []
    for r in range(page.num_rows):
        out.append({"f": [{"v": encode_value(columns[c][r], fields[c], int64_ts)} for c in range(len(fields))]})
    return out
