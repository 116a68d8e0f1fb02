"""Derive figures: all of phases 3 and 4 at full scale, date by date vs batched.

Runs on a copy of the demo warehouse with every raw row loaded (what load + gate leave), so
later parts see the before state untouched. Both paths run in backfill mode (no defensive
checks) so they measure the same work; ``derive_batched_strict_s`` is the batched path with
the checks on.

``derive_default_s`` / ``derive_one_chunk_s``: every date derived from empty tables with the
params' chunking (the default: one chunk per season) and with one chunk for everything, and
their ratio ``derive_default_ratio`` (the default must cost at most 1.1x its best chunking).

Date by date (``chunk_days: 1``, the platform's behaviour) over ~900 dates takes minutes, so
it is measured on an evenly spread sample of dates (every ``SAMPLE_EVERY``-th game date, so
early-season, late-season and playoff dates all count): ``derive_per_date_s`` is seconds per
date, ``derive_per_date_total_s`` that times every date (``derive_per_date_note`` says so).
The sample is re-derived after the batched run, and the
tables must not change (``derive_paths_identical``).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..demo.build import raw_frames
from ..derive import PROCESSORS, run_derive
from ..warehouse import open_warehouse

SAMPLE_EVERY = 15


def run(ctx) -> dict:
    params = ctx.params
    if "demo" not in ctx.state:  # run alone (``python -m nbcore.bench derive``): build the demo first
        from ..demo.build import build_demo

        ctx.state["demo"] = build_demo(params, progress=False)
    built = ctx.state["demo"]
    copy = Path(ctx.root) / "bench-derive.duckdb"
    shutil.copy(params.duckdb_path, copy)
    tables = [p.table.fqn for p in PROCESSORS]
    try:
        base = params.model_copy(update={"duckdb_path": copy, "backfill_mode": True})
        with open_warehouse(base) as wh:
            for name, frame in raw_frames(built.league).items():  # raw complete: every hole loaded
                wh.replace_range(name, frame.game_date.min(), frame.game_date.max(), frame=frame)
            dates = built.league.game_dates

            batched = base.model_copy(update={"chunk_days": 400})
            t = time.perf_counter()
            res_b = run_derive(batched, wh=wh, progress=False, dates=dates)
            batched_s = time.perf_counter() - t
            if not res_b.ok:
                raise RuntimeError(f"batched derive failed: {res_b.error}")
            after_batched = wh.checksums(tables)

            sample = dates[::SAMPLE_EVERY]
            per_date = base.model_copy(update={"chunk_days": 1})
            t = time.perf_counter()
            res_d = run_derive(per_date, wh=wh, progress=False, dates=sample)
            sample_s = time.perf_counter() - t
            if not res_d.ok:
                raise RuntimeError(f"date-by-date derive failed: {res_d.error}")
            identical = wh.checksums(tables) == after_batched

            strict = batched.model_copy(update={"backfill_mode": False, "strict_mode": True})
            t = time.perf_counter()
            res_s = run_derive(strict, wh=wh, progress=False, dates=dates)
            strict_s = time.perf_counter() - t

            # from empty tables: the default chunking (the params' chunk_days) against one chunk
            from_empty = {}
            for name, p in (("default", base), ("one_chunk", base.model_copy(update={"chunk_days": 3660}))):
                _empty(wh, tables)
                t = time.perf_counter()
                res = run_derive(p, wh=wh, progress=False, dates=dates)
                from_empty[name] = (time.perf_counter() - t, len(res.chunks))
                if not res.ok:
                    raise RuntimeError(f"derive from empty ({name}) failed: {res.error}")
            identical = identical and wh.checksums(tables) == after_batched
    finally:
        copy.unlink(missing_ok=True)
        Path(str(copy) + ".wal").unlink(missing_ok=True)
    per_date_s = sample_s / len(sample) * len(dates)
    return {
        "derive_dates": len(dates),
        "derive_rows": int(sum(res_b.rows_written.values())),
        "derive_per_date_s": round(sample_s / len(sample), 3),  # seconds per date, date by date
        "derive_per_date_total_s": round(per_date_s, 1),
        "derive_per_date_note": (
            f"extrapolated: chunk_days=1 measured on {len(sample)} of {len(dates)} game dates (every "
            f"{SAMPLE_EVERY}th) in {sample_s:.1f} s = {sample_s / len(sample):.3f} s/date, times {len(dates)} dates"
        ),
        "derive_batched_s": round(batched_s, 2),
        "derive_batched_chunks": len(res_b.chunks),
        "derive_speedup": round(per_date_s / batched_s, 1),
        "derive_batched_strict_s": round(strict_s, 2) if res_s.ok else None,
        "derive_paths_identical": bool(identical),
        "derive_processor_s": {k: round(v, 2) for k, v in res_b.processor_seconds.items()},
        "derive_default_s": round(from_empty["default"][0], 2),
        "derive_default_chunks": from_empty["default"][1],
        "derive_one_chunk_s": round(from_empty["one_chunk"][0], 2),
        "derive_default_ratio": round(from_empty["default"][0] / from_empty["one_chunk"][0], 3),
    }


def _empty(wh, tables: list[str]) -> None:
    """Every derived table and the lineage emptied: a from-scratch derive follows."""
    from ..lineage import TABLE as LINEAGE

    with wh.transaction():
        for table in [*tables, LINEAGE]:
            wh.execute(f"DELETE FROM {table} WHERE TRUE")
