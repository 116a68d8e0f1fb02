"""Foundation figures: building the full demo, and validating all five seasons."""
from __future__ import annotations

import statistics
import time

from ..demo.build import build_demo
from ..validate import run_validate
from ..warehouse import open_warehouse


def run(ctx) -> dict:
    t = time.perf_counter()
    built = build_demo(ctx.params, progress=False)
    demo_build_s = time.perf_counter() - t
    ctx.state["demo"] = built
    times = []
    with open_warehouse(ctx.params) as wh:
        for _ in range(5):
            t = time.perf_counter()
            run_validate(ctx.params, wh=wh, progress=False)
            times.append(time.perf_counter() - t)
    return {
        "demo_build_s": round(demo_build_s, 2),
        "demo_build_parts_s": {k: round(v, 2) for k, v in built.timings.items()},
        "validate_s": round(statistics.median(times), 3),
    }
