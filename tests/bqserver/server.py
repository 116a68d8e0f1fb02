"""The HTTP face of the loopback server: BigQuery REST API v2 routes over ``http.server``.

Routes (what google-cloud-bigquery and pandas-gbq call):
  datasets.get/insert/delete/list          /bigquery/v2/projects/{p}/datasets[/{d}]
  tables.get/insert/patch/delete/list      /bigquery/v2/projects/{p}/datasets/{d}/tables[/{t}]
  tabledata.list                           .../tables/{t}/data
  jobs.insert/get/list/cancel              /bigquery/v2/projects/{p}/jobs[/{id}[/cancel]]
  jobs.getQueryResults, jobs.query         /bigquery/v2/projects/{p}/queries[/{id}]
  jobs.insert with media (load jobs)       /upload/bigquery/v2/projects/{p}/jobs?uploadType=multipart|resumable

A query job runs to completion inside ``jobs.insert``; the response still says RUNNING so
the client polls ``jobs.get`` and ``jobs.getQueryResults`` exactly as against BigQuery.
Unexpected server faults answer 400 (not 5xx) so the client fails at once instead of
retrying for minutes.
"""
from __future__ import annotations

import json
import os
import re
import socket
import threading
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from .engine import Engine, MiB
from .errors import BQError
from .zetacheck import ZetaSQLChecker, available

_P = r"([^/]+)"
_API = "/bigquery/v2/projects/" + _P
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    server: "_Server"

    # -- plumbing ---------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code: int, body: Optional[dict] = None, headers: Optional[dict] = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            raw = self._body()
            for m, pattern, fn in ROUTES:
                if m != method:
                    continue
                match = re.match(pattern, url.path)
                if match:
                    args = [unquote(a) for a in match.groups()]
                    result = fn(self, raw, query, *args)
                    if isinstance(result, tuple):
                        self._send(*result)
                    elif result is None:
                        self._send(204)
                    else:
                        self._send(200, result)
                    return
            raise BQError(501, "notImplemented", f"{method} {url.path} is not served by the loopback server")
        except BQError as e:
            self._send(e.code, e.http_body())
        except Exception as e:  # a server bug: fail fast (4xx is not retried by the client)
            err = BQError(400, "invalid", f"loopback server error: {e!r}\n{traceback.format_exc(limit=6)}")
            self._send(400, err.http_body())

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


def _json(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise BQError(400, "parseError", "Parse Error: the request body is not JSON") from None


def _flag(query: dict, name: str) -> bool:
    return (query.get(name) or ["false"])[0].lower() == "true"


def _int(query: dict, name: str) -> Optional[int]:
    v = (query.get(name) or [None])[0]
    return int(v) if v not in (None, "") else None


def _engine(h: _Handler) -> Engine:
    return h.server.engine


# -- datasets ---------------------------------------------------------------------------
def list_datasets(h, raw, q, project):
    return _engine(h).list_datasets(project)


def insert_dataset(h, raw, q, project):
    return _engine(h).insert_dataset(project, _json(raw))


def get_dataset(h, raw, q, project, dataset):
    return _engine(h).get_dataset(project, dataset)


def delete_dataset(h, raw, q, project, dataset):
    _engine(h).delete_dataset(project, dataset, _flag(q, "deleteContents"))


# -- tables -------------------------------------------------------------------------------
def list_tables(h, raw, q, project, dataset):
    return _engine(h).list_tables(project, dataset)


def insert_table(h, raw, q, project, dataset):
    return _engine(h).insert_table(project, dataset, _json(raw))


def get_table(h, raw, q, project, dataset, table):
    return _engine(h).get_table(project, dataset, table)


def patch_table(h, raw, q, project, dataset, table):
    return _engine(h).patch_table(project, dataset, table, _json(raw))


def delete_table(h, raw, q, project, dataset, table):
    _engine(h).delete_table(project, dataset, table)


def table_data(h, raw, q, project, dataset, table):
    start = _int(q, "startIndex") or int((q.get("pageToken") or ["0"])[0] or 0)
    return _engine(h).table_rows(project, dataset, table, start, _int(q, "maxResults"),
                                 _flag(q, "formatOptions.useInt64Timestamp"))


# -- jobs ---------------------------------------------------------------------------------------
def insert_job(h, raw, q, project):
    return _engine(h).insert_job(project, _json(raw))


def get_job(h, raw, q, project, job_id):
    return _engine(h).get_job(project, job_id)


def list_jobs(h, raw, q, project):
    parent = (q.get("parentJobId") or [None])[0]
    return _engine(h).list_jobs(project, parent, q.get("stateFilter") or [], _int(q, "minCreationTime"),
                                _int(q, "maxCreationTime"))


def cancel_job(h, raw, q, project, job_id):
    return _engine(h).cancel_job(project, job_id)


def query_results(h, raw, q, project, job_id):
    start = _int(q, "startIndex") or int((q.get("pageToken") or ["0"])[0] or 0)
    return _engine(h).query_results(project, job_id, start, _int(q, "maxResults"),
                                    _flag(q, "formatOptions.useInt64Timestamp"))


def jobs_query(h, raw, q, project):
    """jobs.query: a query job created and answered in one call."""
    body = _json(raw)
    engine = _engine(h)
    qc = {k: body[k] for k in ("query", "queryParameters", "parameterMode", "useLegacySql", "defaultDataset",
                                "maximumBytesBilled", "useQueryCache", "createSession", "connectionProperties")
          if k in body}
    job_id = f"job_{uuid.uuid4().hex}"
    config: dict[str, Any] = {"query": qc}
    if body.get("labels"):
        config["labels"] = body["labels"]
    if body.get("dryRun"):
        config["dryRun"] = True
    ref = {"projectId": project, "jobId": job_id, "location": body.get("location") or engine.location}
    res = engine.insert_job(project, {"jobReference": ref, "configuration": config})
    out: dict[str, Any] = {"kind": "bigquery#queryResponse", "jobReference": res["jobReference"], "jobComplete": True}
    if body.get("dryRun"):
        out["totalBytesProcessed"] = res["statistics"].get("totalBytesProcessed", "0")
        schema = res["statistics"].get("query", {}).get("schema")
        if schema:
            out["schema"] = schema
        return out
    int64_ts = bool((body.get("formatOptions") or {}).get("useInt64Timestamp"))
    results = engine.query_results(project, job_id, 0, body.get("maxResults"), int64_ts)
    results.update(kind="bigquery#queryResponse")
    return results


# -- uploads (load jobs with media) ---------------------------------------------------------------
def _multipart(raw: bytes, content_type: str) -> tuple[dict, bytes]:
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise BQError(400, "invalid", "multipart upload without a boundary")
    boundary = b"--" + m.group(1).encode()
    parts = []
    for chunk in raw.split(boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, body = chunk.partition(b"\r\n\r\n")
        if body.endswith(b"\r\n"):
            body = body[:-2]
        parts.append(body)
    if len(parts) < 2:
        raise BQError(400, "invalid", "multipart upload needs a metadata part and a media part")
    return _json(parts[0]), parts[1]


def upload(h, raw, q, project):
    kind = (q.get("uploadType") or [""])[0]
    engine = _engine(h)
    if kind == "multipart":
        metadata, data = _multipart(raw, h.headers.get("Content-Type", ""))
        return engine.insert_job(project, metadata, data)
    if kind == "resumable":
        upload_id = uuid.uuid4().hex
        with engine.lock:
            engine.uploads[upload_id] = {"project": project, "metadata": _json(raw), "data": bytearray()}
        host = h.headers.get("Host") or f"{h.server.server_address[0]}:{h.server.server_address[1]}"
        location = f"http://{host}/upload/bigquery/v2/projects/{project}/jobs?uploadType=resumable&upload_id={upload_id}"
        return (200, {}, {"Location": location})
    raise BQError(400, "invalid", f"unknown uploadType {kind!r}")


def upload_chunk(h, raw, q, project):
    engine = _engine(h)
    upload_id = (q.get("upload_id") or [""])[0]
    with engine.lock:
        state = engine.uploads.get(upload_id)
    if state is None:
        raise BQError(404, "notFound", f"Not found: upload {upload_id}")
    rng = h.headers.get("Content-Range", "")
    m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", rng) or re.match(r"bytes \*/(\d+)", rng)
    if not m:
        raise BQError(400, "invalid", f"bad Content-Range {rng!r}")
    if len(m.groups()) == 3:
        start, total = int(m.group(1)), m.group(3)
        if start != len(state["data"]):
            raise BQError(400, "invalid", f"chunk starts at {start}, expected {len(state['data'])}")
        state["data"].extend(raw)
    else:
        total = m.group(1)
    received = len(state["data"])
    if total != "*" and received >= int(total):
        with engine.lock:
            engine.uploads.pop(upload_id, None)
        return engine.insert_job(state["project"], state["metadata"], bytes(state["data"]))
    return (308, None, {"Range": f"bytes=0-{received - 1}"} if received else {})


ROUTES: list[tuple[str, str, Callable]] = [
    ("GET", _API + r"/datasets$", list_datasets),
    ("POST", _API + r"/datasets$", insert_dataset),
    ("GET", _API + r"/datasets/" + _P + "$", get_dataset),
    ("DELETE", _API + r"/datasets/" + _P + "$", delete_dataset),
    ("GET", _API + r"/datasets/" + _P + "/tables$", list_tables),
    ("POST", _API + r"/datasets/" + _P + "/tables$", insert_table),
    ("GET", _API + r"/datasets/" + _P + "/tables/" + _P + "$", get_table),
    ("PATCH", _API + r"/datasets/" + _P + "/tables/" + _P + "$", patch_table),
    ("PUT", _API + r"/datasets/" + _P + "/tables/" + _P + "$", patch_table),
    ("DELETE", _API + r"/datasets/" + _P + "/tables/" + _P + "$", delete_table),
    ("GET", _API + r"/datasets/" + _P + "/tables/" + _P + "/data$", table_data),
    ("POST", _API + r"/jobs$", insert_job),
    ("GET", _API + r"/jobs$", list_jobs),
    ("GET", _API + r"/jobs/" + _P + "$", get_job),
    ("POST", _API + r"/jobs/" + _P + "/cancel$", cancel_job),
    ("GET", _API + r"/queries/" + _P + "$", query_results),
    ("POST", _API + r"/queries$", jobs_query),
    ("POST", r"^/upload/bigquery/v2/projects/" + _P + "/jobs$", upload),
    ("PUT", r"^/upload/bigquery/v2/projects/" + _P + "/jobs$", upload_chunk),
]
ROUTES = [(m, ("^" + p if not p.startswith("^") else p), fn) for m, p, fn in ROUTES]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, engine: Engine, verbose: bool):
        self.engine = engine
        self.verbose = verbose
        self.open_sockets: set = set()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive client connections, so no handler thread outlives the server."""
        for sock in list(self.open_sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


_CHECKER: Optional[ZetaSQLChecker] = None


def zetasql_checker() -> ZetaSQLChecker:
    """The process's one ZetaSQL checker (the analyzer is loaded once; counts accumulate)."""
    global _CHECKER
    if not available():
        raise RuntimeError("the loopback server analyzes statements with ZetaSQL: pip install -e '.[test]' "
                           "(packages zetasql and wasmtime), or set BQSERVER_ZETASQL=0 to run without it")
    if _CHECKER is None:
        _CHECKER = ZetaSQLChecker()
    return _CHECKER


class BigQueryLoopback:
    """A BigQuery REST endpoint on 127.0.0.1, backed by DuckDB. Start it, point a client at ``endpoint``.

    >>> with BigQueryLoopback() as bq:
    ...     client = bq.client("demo-project")
    """

    def __init__(self, db_path: str = ":memory:", *, host: str = "127.0.0.1", port: int = 0, location: str = "US",
                 min_bytes_per_table: int = 10 * MiB, page_rows: int = 20_000, verbose: bool = False,
                 job_latency_s: float = 0.0, zetasql: Optional[bool] = None):
        """*job_latency_s* delays every job (not dry runs) as BigQuery's per-job overhead does.
        *zetasql*: analyze every statement with ZetaSQL (see ``zetacheck``); default on, unless
        ``BQSERVER_ZETASQL=0``. The checker is shared by every server of the process, so its
        counts (``zetasql_checker().statements``) cover a whole test session."""
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the loopback server binds to 127.0.0.1 only, not {host!r}")
        if zetasql is None:
            zetasql = os.environ.get("BQSERVER_ZETASQL", "1") != "0"
        self.engine = Engine(db_path, location=location, min_bytes_per_table=min_bytes_per_table, page_rows=page_rows,
                             job_latency_s=job_latency_s, checker=zetasql_checker() if zetasql else None)
        self._server = _Server((host, port), self.engine, verbose)
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "BigQueryLoopback":
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="bq-loopback", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.close_connections()
        self._server.server_close()
        with self.engine.lock:
            for session in list(self.engine.sessions.values()):
                session.con.close()
            self.engine.sessions.clear()
            self.engine.con.close()

    def __enter__(self) -> "BigQueryLoopback":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client(self, project: str = "loopback-project", **kwargs):
        """A real ``google.cloud.bigquery.Client`` talking to this server with anonymous credentials."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(project=project, credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=self.endpoint), **kwargs)

    # -- what tests inspect ----------------------------------------------------------------------
    def jobs(self, include_children: bool = False) -> list[dict]:
        """Every job resource the server received (dry runs are not jobs), oldest first."""
        return self.engine.job_resources(include_children)

    def job_counts(self) -> dict[str, int]:
        """Jobs received by kind: ``query``, ``load``, ``dry_run``; ``failed`` and ``injected`` among them."""
        return dict(self.engine.job_counts)

    def inject(self, reason: str, *, times: int = 1, match: str = "") -> None:
        """Fail the next *times* jobs containing *match* with a transient error (see ``Engine.inject``)."""
        self.engine.inject(reason, times=times, match=match)

    def bytes_processed(self, jobs: Optional[list[dict]] = None) -> int:
        return sum(int(j["statistics"].get("totalBytesProcessed", 0)) for j in (jobs if jobs is not None else self.jobs()))
