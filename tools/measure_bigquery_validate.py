"""How many bytes validate scans on BigQuery: the demo league (full scale by default) built on the
loopback BigQuery server, then validate run against it, its jobs' bytes read off the server's
byte accounting (tests/bqserver/analysis.py documents the estimate).

    .venv/bin/python tools/measure_bigquery_validate.py [--scale small|full]

Prints one JSON object: rows per table, validate's jobs with bytes processed and billed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nbcore import schema  # noqa: E402
from nbcore.demo.build import build_demo  # noqa: E402
from nbcore.params import build_params  # noqa: E402
from nbcore.validate import run_validate  # noqa: E402
from nbcore.warehouse import open_warehouse  # noqa: E402
from tests.bqserver import BigQueryLoopback  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=["small", "full"], default="full")
    args = ap.parse_args()
    out: dict = {"scale": args.scale}
    with tempfile.TemporaryDirectory() as tmp, BigQueryLoopback() as srv:
        root = Path(tmp)
        params = build_params({
            "run_name": "measure", "backend": "bigquery", "bucket": str(root / "bucket"), "archive_dir": str(root / "runs"),
            "demo": {"scale": args.scale, "seed": 7},
            "bigquery": {"project": "measure-project", "dataset_suffix": "_measure", "api_endpoint": srv.endpoint},
        }, "measure", root)
        t0 = time.perf_counter()
        build_demo(params, progress=False)
        out["build_s"] = round(time.perf_counter() - t0, 1)
        with open_warehouse(params) as wh:
            out["rows"] = {t.fqn: wh.row_count(t.fqn) for t in schema.tracked_tables()}
            out["table_bytes"] = sum(int(wh.client.get_table(wh.table_id(t.fqn)).num_bytes or 0)
                                     for t in schema.tracked_tables())
            wh.jobs.clear()
            t0 = time.perf_counter()
            run_validate(params, wh=wh, progress=False)
            out["validate_s"] = round(time.perf_counter() - t0, 1)
            jobs = [j for j in wh.jobs if j["kind"] == "query"]
        out["validate_jobs"] = [{"step": j["step"], "bytes_processed": j["bytes_processed"], "bytes_billed": j["bytes_billed"]}
                                for j in jobs]
        out["validate_bytes_processed"] = sum(int(j["bytes_processed"] or 0) for j in jobs)
        out["validate_bytes_billed"] = sum(int(j["bytes_billed"] or 0) for j in jobs)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
