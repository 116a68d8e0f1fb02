"""The demo's before state for phases 3 to 5B, built by the real stage code.

Demo-building code lives under ``nbcore/demo/`` (the stages never import it):

* phases 3 and 4: every completed game date except the downstream holes is derived in backfill
  mode (the platform had no defensive checks on then either), in large chunks that stop at each
  hole, so rows after a hole were computed without it, as on the real platform;
* phase 5: predictions for every final date except the downstream holes (the platform never had
  features for them); phase 5B: grades for those dates except the ungraded season. Both run in
  large chunks: the values do not depend on the chunking.

Building the starting state is not a person's work, so it must not read as such: a stage run
outside the driver without an archive records itself as a stage run by hand (``kind:
interactive``, listed by ``runbook runs`` and by the next report under "Stages run by hand").
Each step here gets a throwaway archive in a temporary folder instead (``_setup_archive``), so
the demo leaves no archive behind; its ``processor_run_history`` rows keep the run id
``<timestamp>-demo-before-state-<stage>``.
"""
from __future__ import annotations

import tempfile
from contextlib import contextmanager
from typing import Iterator

from ..archive import RunArchive, new_run_id
from ..params import RunParams
from ..warehouse import Warehouse

RUN_NAME = "demo-before-state"


@contextmanager
def _setup_archive(params: RunParams, stage: str) -> Iterator[RunArchive]:
    """An archive for one setup step, deleted afterwards (never in ``params.archive_dir``)."""
    with tempfile.TemporaryDirectory(prefix="runbook-demo-setup-") as tmp:
        scratch = params.model_copy(update={"archive_dir": tmp})
        yield RunArchive.create(scratch, new_run_id(RUN_NAME, stage))


def _final_dates(league) -> set:
    final = league.schedule[league.schedule.game_status == "final"]
    return set(final.game_date)


def derive_phases_3_4(wh: Warehouse, params: RunParams, league, holes) -> None:
    from ..derive.run import run_derive

    missing = set(holes.downstream_missing)
    dates = sorted(d for d in _final_dates(league) if d not in missing)
    p = params.model_copy(update={"backfill_mode": True, "chunk_days": 3660, "tables": None, "run_name": RUN_NAME})
    with _setup_archive(p, "derive") as archive:
        result = run_derive(p, wh=wh, archive=archive, progress=False, dates=dates)
    if not result.ok:
        raise RuntimeError(f"demo before state: derive failed: {result.error}")


def predict_phase_5(wh: Warehouse, params: RunParams, league, holes) -> None:
    from ..predict.stage import run_predict

    dates = sorted(_final_dates(league) - set(holes.downstream_missing))
    p = params.model_copy(update={"chunk_days": 3660, "repredict": False, "run_name": RUN_NAME})
    with _setup_archive(p, "predict") as archive:
        run_predict(p, wh=wh, archive=archive, progress=False, dates=dates)


def grade_phase_5b(wh: Warehouse, params: RunParams, league, holes) -> None:
    from ..grade import run_grade

    dates = sorted(_final_dates(league) - set(holes.downstream_missing) - set(holes.ungraded))
    p = params.model_copy(update={"chunk_days": 3660, "regrade": False, "run_name": RUN_NAME})
    with _setup_archive(p, "grade") as archive:
        run_grade(p, wh=wh, archive=archive, progress=False, dates=dates, metrics=False)
