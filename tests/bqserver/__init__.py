"""A loopback BigQuery for tests: the REST API v2 subset the real clients use, on DuckDB.

There is no BigQuery emulator to install, so the BigQuery backend is proven against this:
google-cloud-bigquery and pandas-gbq talk to it over HTTP on 127.0.0.1 (``client_options``
``api_endpoint`` + ``AnonymousCredentials``), so requests, job polling, paging, type
conversion and errors all go through the real client code. The server refuses what
BigQuery refuses: unknown datasets and tables, scans without a required partition filter,
bytes over ``maximumBytesBilled``, malformed or missing query parameters.

    from tests.bqserver import BigQueryLoopback
    with BigQueryLoopback() as bq:
        client = bq.client("my-project")

Manual use: ``python -m tests.bqserver --port 9050 [--db file.duckdb]``.
"""
from .engine import Engine, MiB
from .errors import BQError
from .server import BigQueryLoopback

__all__ = ["BigQueryLoopback", "BQError", "Engine", "MiB"]
