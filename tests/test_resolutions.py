"""A run's load failures as they stand now: resolved by a later load, waived, or open."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pandas as pd

from nbcore.history import RunRecord, record_runs
from nbcore.resolutions import failure_status, open_failures, waived_pairs
from nbcore.sources import BOXSCORES, GAMEBOOK, PROPS
from nbcore.waivers import waived
from nbcore.warehouse import open_warehouse


def _failures(rows):
    return pd.DataFrame([{"date": d.isoformat(), "source": s, "file": f"{s}/{d}.json", "stage": "read",
                          "reason": why, "attempt": "2", "resolved": "False"} for d, s, why in rows])


def _load(wh, run_id, source, day, ok, minutes_later):
    at = datetime.now(timezone.utc) + timedelta(minutes=minutes_later)
    record_runs(wh, [RunRecord(run_id=run_id, stage="load", phase="2", processor=source, data_date=day, success=ok,
                               error=None if ok else "file missing", started_at=at, finished_at=at)])


def test_failures_are_resolved_waived_or_open_per_source_and_date(demo_copy):
    params, built = demo_copy
    dry = built.league.quirks.no_lines[PROPS][0]  # waived in params/waivers.example.yaml
    d1, d2 = date(2024, 4, 2), date(2024, 4, 3)
    failures = _failures([(d1, BOXSCORES, "file missing"), (d1, GAMEBOOK, "not JSON"), (d2, GAMEBOOK, "not JSON"),
                          (dry, PROPS, "no rows")])
    with open_warehouse(params) as wh:
        for src, d in ((BOXSCORES, d1), (GAMEBOOK, d1), (GAMEBOOK, d2), (PROPS, dry)):
            _load(wh, "run-1", src, d, False, 1)
        _load(wh, "run-1-retry", BOXSCORES, d1, True, 2)  # `runbook load --retry-failed run-1` fixed one
        index = waived(params, wh)
        status = failure_status(failures, wh, index)
        still = open_failures(failures, wh, index)
    got = {(r.source, r.date): (r.status, r.resolved_by) for r in status.itertuples()}
    assert got[(BOXSCORES, d1.isoformat())] == ("resolved", "loaded by run run-1-retry")
    assert got[(GAMEBOOK, d1.isoformat())] == ("open", None)  # same date, other source: still open
    assert got[(GAMEBOOK, d2.isoformat())] == ("open", None)
    assert got[(PROPS, dry.isoformat())][0] == "waived" and "approved by jane.doe" in got[(PROPS, dry.isoformat())][1]
    assert sorted(zip(still.source, still.date)) == [(GAMEBOOK, d1.isoformat()), (GAMEBOOK, d2.isoformat())]
    pairs = waived_pairs(index)
    assert (PROPS, dry) in pairs and (BOXSCORES, dry) not in pairs
