"""Load figures: every raw date of the full demo loaded from its phase 1 files (``reload``), and the
memory one big file costs.

Runs on a copy of the demo warehouse so later parts see the before state untouched; the
demo's fail-once fault markers are put back afterwards for the same reason.

Memory (issue 22): ``load_peak_rss_mb`` is the peak RSS of a fresh process that loads one
generated 150 MB box-score file the way the load stage does (``nbcore.load.check_file``: size
bound, read, decode, JSON, schema, parse, rules); the goal is at most 3 times the file. The bound
(``sources.checks.MAX_FILE_BYTES``) refuses it unread, so ``load_peak_rss_limit_mb`` measures the
same for a file just under the bound, which is read and parsed in full, and ``load_rss_base_mb``
is that process's RSS before the file (interpreter, pandas, DuckDB): what the file itself costs is
the difference.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..load import run_load
from ..sources import BOXSCORES, FAULTS_DIR, file_path

BIG_FILE_MB = 150

# The child: load one file as the load stage does, print its RSS before and its peak (MB).
_CHILD = r"""
import json, sys
from datetime import date


def hwm_mb():
    # this process's own peak (VmHWM): getrusage's ru_maxrss keeps the parent's peak across fork+exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

from nbcore.load import check_file, schedule_index
from nbcore.bucket import Bucket
from nbcore.sources.checks import FileProblem
bucket, source, day, season = sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3]), int(sys.argv[4])
b = Bucket(bucket)
schedule, season_of = schedule_index(b, [season])
base = hwm_mb()
try:
    rows = check_file(b, source, day, schedule, season_of)
    outcome = f"loaded {len(rows)} rows"
except FileProblem as e:
    outcome = f"{type(e).__name__} ({e.stage}): {e.reason[:160]}"
peak = hwm_mb()
print(json.dumps({"base_mb": round(base, 1), "peak_mb": round(peak, 1), "outcome": outcome}))
"""


def run(ctx) -> dict:
    params = ctx.params
    if "demo" not in ctx.state:  # run alone (``python -m nbcore.bench load``): build the demo first
        from ..demo.build import build_demo

        ctx.state["demo"] = build_demo(params, progress=False)
    copy = Path(ctx.root) / "bench-load.duckdb"
    shutil.copy(params.duckdb_path, copy)
    faults = Path(params.bucket) / FAULTS_DIR
    saved = {p: p.read_bytes() for p in faults.rglob("*") if p.is_file()} if faults.is_dir() else {}
    try:
        p = params.model_copy(update={"duckdb_path": copy, "reload": True})
        t = time.perf_counter()
        result = run_load(p, progress=False)
        seconds = time.perf_counter() - t
    finally:
        for path, data in saved.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        copy.unlink(missing_ok=True)
    loaded = [o for o in result.outcomes if o.state == "loaded" and o.source != "nbac_schedule"]
    rows = sum(o.rows for o in loaded)
    out = {
        "load_dates_per_s": round(len(loaded) / seconds, 1),
        "load_rows_per_s": round(rows / seconds),
        "load_full_reload_s": round(seconds, 2),
        "load_full_reload_dates": len(loaded),
        "load_full_reload_rows": rows,
        "load_failed": len(result.failed),
    }
    out.update(big_file_memory(Path(params.bucket), Path(ctx.root) / "bench-big-file"))
    return out


def big_file_memory(bucket: Path, scratch: Path) -> dict:
    """``load_peak_rss_mb`` (a 150 MB box-score file) and ``load_peak_rss_limit_mb`` (one just under
    the supported size), each loaded in a fresh process; ``load_rss_base_mb`` its RSS before; the
    files' sizes (``load_big_file_mb``, ``load_limit_file_mb``) and what the load said of them."""
    from ..sources import checks

    source_dir = bucket / BOXSCORES
    sample = sorted(source_dir.glob("*.json"))[len(list(source_dir.glob("*.json"))) // 2]
    day = sample.stem
    season = int(day[:4]) if int(day[5:7]) >= 7 else int(day[:4]) - 1
    out: dict = {}
    try:
        for key, name, size in (("load_peak_rss_mb", "big", BIG_FILE_MB * 2**20),
                                ("load_peak_rss_limit_mb", "limit", checks.MAX_FILE_BYTES - 2**16)):
            root = scratch / key
            (root / BOXSCORES).mkdir(parents=True, exist_ok=True)
            (root / "nbac_schedule").mkdir(parents=True, exist_ok=True)
            shutil.copy(bucket / file_path("nbac_schedule", season_year=season), root / "nbac_schedule")
            written = padded_boxscore_file(sample, root / BOXSCORES / sample.name, size)
            proc = subprocess.run([sys.executable, "-c", _CHILD, str(root), BOXSCORES, day, str(season)],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"bench load: the big-file process failed: {proc.stderr[-2000:]}")
            child = json.loads(proc.stdout.strip().splitlines()[-1])
            out[key] = child["peak_mb"]
            out[f"load_{name}_file_mb"] = round(written / 2**20, 1)
            out[f"load_{name}_file_outcome"] = child["outcome"]
            out["load_rss_base_mb"] = child["base_mb"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def padded_boxscore_file(sample: Path, dest: Path, size: int) -> int:
    """A box-score file of about ``size`` bytes: ``sample``'s document with its first game's player
    rows repeated (junk the volume rules refuse, but only after reading and parsing it all).
    Written in pieces, so the bench process never holds the whole file. Returns its size."""
    doc = json.loads(sample.read_text())
    players = doc["games"][0]["players"]
    doc["games"][0]["players"] = ["@@PLAYERS@@"]
    head, tail = json.dumps(doc).split('"@@PLAYERS@@"')
    block = ", ".join(json.dumps(p) for p in players)
    with dest.open("w") as f:
        f.write(head)
        f.write(block)
        written = len(head) + len(block) + len(tail)
        while written + len(block) + 2 <= size:
            f.write(", ")
            f.write(block)
            written += len(block) + 2
        f.write(tail)
    return dest.stat().st_size
