"""``make bench``: one JSON object of timings at full demo scale.

Each module in this package measures one part (``foundation``, ``load``, ``derive``,
``predict``, ``runbook``) and returns a dict of keys; ``main`` merges them in order and
prints one JSON object. Keys are contracts: keep their names.
"""
from __future__ import annotations

import importlib
import json
import sys
import tempfile
import traceback
from pathlib import Path

from ..params import PROJECT_ROOT, build_params

PARTS = ["foundation", "status", "load", "derive", "predict", "runbook", "converge", "bigquery"]


class BenchContext:
    """A scratch folder with its own full-scale demo params, shared by every part."""

    def __init__(self, root: Path):
        self.root = root
        self.params = build_params(
            {"run_name": "bench", "duckdb_path": str(root / "bench.duckdb"), "bucket": str(root / "bucket"),
             "archive_dir": str(root / "runs"), "demo": {"scale": "full", "seed": 7},
             # the demo's waived gaps (nights with no prop lines), as params/demo.yaml has them
             "waivers": str(PROJECT_ROOT / "params" / "waivers.example.yaml")},
            "bench",
            root,
        )
        self.state: dict = {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parts = argv or PARTS
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="runbook-bench-") as tmp:
        ctx = BenchContext(Path(tmp))
        for part in parts:
            try:
                mod = importlib.import_module(f"nbcore.bench.{part}")
            except ModuleNotFoundError:
                continue
            try:
                out.update(mod.run(ctx))
            except Exception as e:  # a broken part must not hide the others' figures
                traceback.print_exc(file=sys.stderr)
                out[f"{part}_error"] = str(e)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
