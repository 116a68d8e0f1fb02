"""Run the loopback BigQuery by hand: ``python -m tests.bqserver --port 9050``.

Then point a run at it with a params file holding
``bigquery: {project: loopback-project, api_endpoint: "http://127.0.0.1:9050", dataset_suffix: _dev}``.
"""
from __future__ import annotations

import argparse
import time

from .engine import MiB
from .server import BigQueryLoopback


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.bqserver", description=__doc__)
    ap.add_argument("--port", type=int, default=9050)
    ap.add_argument("--db", default=":memory:", help="DuckDB file to keep datasets in (default: in memory)")
    ap.add_argument("--min-mib-per-table", type=int, default=10, help="minimum MiB billed per table referenced")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = ap.parse_args()
    server = BigQueryLoopback(args.db, port=args.port, min_bytes_per_table=args.min_mib_per_table * MiB,
                              verbose=args.verbose).start()
    print(f"loopback BigQuery on {server.endpoint} (DuckDB: {args.db}); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
