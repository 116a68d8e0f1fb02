"""The demo's before state for phases 3 and 4, built by the real derive code.

Every completed game date except the downstream holes is derived in backfill mode (the
platform had no defensive checks on then either), in large chunks that stop at each hole, so
rows after a hole were computed without it, as on the real platform.
"""
from __future__ import annotations

from ..params import RunParams
from ..warehouse import Warehouse


def derive_phases_3_4(wh: Warehouse, params: RunParams, league, holes) -> None:
    from .run import run_derive

    final = league.schedule[league.schedule.game_status == "final"]
    missing = set(holes.downstream_missing)
    dates = sorted(d for d in set(final.game_date) if d not in missing)
    p = params.model_copy(update={"backfill_mode": True, "chunk_days": 3660, "tables": None,
                                  "run_name": "demo-before-state"})
    result = run_derive(p, wh=wh, progress=False, dates=dates)
    if not result.ok:
        raise RuntimeError(f"demo before state: derive failed: {result.error}")
