"""``make bench``: one JSON object of timings at full demo scale.

Each module in this package measures one part (``foundation``, ``load``, ``derive``,
``predict``, ``runbook``) and returns a dict of keys; ``main`` merges them in order and
prints one JSON object. Keys are contracts: keep their names.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path

from ..params import PROJECT_ROOT, build_params

DEMO_MODEL_CACHE = "model-cache-demo"  # where the bench's demo build keeps its fitted models
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


@contextmanager
def fresh_model_cache(ctx: "BenchContext", name: str, from_demo: bool = False):
    """Inside the block, walk-forward models are kept in a folder of the bench's own
    (``RUNBOOK_MODEL_CACHE``), so a figure never depends on models an earlier run on this machine
    left behind: empty, or (``from_demo``) a copy of what building the demo fitted, as after
    ``make demo`` on a new machine (the build's stages fill the cache the run then reads)."""
    import shutil

    from ..predict import model_cache

    saved = os.environ.get(model_cache.ENV)
    folder = Path(ctx.root) / f"model-cache-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    demo = Path(ctx.root) / DEMO_MODEL_CACHE
    if from_demo and demo.is_dir():
        shutil.copytree(demo, folder)
    os.environ[model_cache.ENV] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(model_cache.ENV, None)
        else:
            os.environ[model_cache.ENV] = saved


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parts = argv or PARTS
    out: dict = {}
    from ..predict import model_cache

    with tempfile.TemporaryDirectory(prefix="runbook-bench-") as tmp:
        ctx = BenchContext(Path(tmp))
        os.environ[model_cache.ENV] = str(Path(tmp) / DEMO_MODEL_CACHE)  # the demo build's models
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
