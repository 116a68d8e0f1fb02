"""How many BigQuery jobs a run will send, per stage: what ``runbook plan`` shows next to bytes.

On BigQuery every job costs about a second of latency whatever its size, so the number of
round trips, not the bytes, decides a backfill's wall time. The estimate is computed from the
plan's dates with the same cutting and batching rules the stages and the backend follow:

* **load**: per raw source, its planned dates in batches of ``BATCH_DATES`` (one transaction
  each): the batch's rows go in through a staging table when they are too big to ride as
  query parameters (one load job), then one script (``BEGIN; DELETE; INSERT; history;
  COMMIT``); per season whose schedule is missing, one read and one script;
* **derive**: one read for every chunk's defensive checks (unless ``backfill_mode`` or
  ``strict_mode: false``), then one job per chunk (``nbcore.chunks``): every processor's
  writes and the present-games read, with the previous chunk's ``COMMIT`` (run history and
  lineage) at its head (``Warehouse.pipelined``); the last ``COMMIT`` is one more job (plus one
  lineage read when a rebuilt partition does not change, which cannot be known before the run);
* **predict**: once per stage one read per input for all its dates (``PREDICT_PREFETCH``:
  targets, the two baselines, training rows, current rows), then per chunk the staging load
  of its rows; the chunks' transactions read nothing, so they ride together to the stage's
  last job;
* **grade**: one job per chunk (the write and its counts read, the previous ``COMMIT`` at
  its head) and the last ``COMMIT``;
* derive and grade open one session per stage and record it in the lease (one UPDATE);
* plus each stage's fixed reads (``FIXED``: the schedule, pending dates, attempts, the
  staleness query, summaries), counted once per stage run.

It is an estimate: a load batch that fails is retried date by date, a transient error is
retried, and the fixed reads depend on what each stage finds. ``bench`` compares it with the
jobs the loopback server counts (``nbcore/bench/bigquery.py``).
"""
from __future__ import annotations

from datetime import date
from typing import Optional, Iterable, Mapping

from .chunks import make_chunks

BATCH_DATES = 400             # BigQueryWarehouse.load_batch_dates (tests/test_bigquery_plan_jobs.py checks)
STAGING_ROWS = 2_000          # rows of a load batch above which it goes through a staging table (~2 MB)
# reads each stage makes once per run, whatever its dates (counted on the demo's from-empty backfill);
# derive, predict and grade read no targets of their own: they execute the plan's chunks
FIXED = {"load": 12, "gate": 15, "derive": 3, "predict": 1, "grade": 2}
PREDICT_PREFETCH = 5          # targets, moving_average, matchup_adjusted, training rows, current rows
# a chunked stage that runs any chunk: its last COMMIT, and (derive, grade: a chunk reads in its
# transaction, so the stage opens a session) the lease update recording that session
LAST_COMMIT = 1
SESSION = 1


def estimate_jobs(*, stages: Iterable[str], chunk_days: int, raw_dates: Mapping[str, int],
                  rows_per_date: Mapping[str, float], seasons: int, schedule_seasons: int, derive_dates: list[date],
                  derive_stale: bool, predict_dates: list[date], grade_dates: list[date],
                  checks: bool, season_of: Optional[Mapping[date, int]] = None) -> dict[str, int]:
    """Jobs per stage. ``raw_dates``: per raw source, the dates to load; ``rows_per_date``: their
    rows per date (for the staging rule); ``seasons``: the run's seasons (one schedule read each);
    ``schedule_seasons``: those whose schedule is missing (one write each). ``derive_stale`` is
    accepted for the record: a rebuilt partition whose rows do not change costs one more read
    in its chunk (its previous version), which cannot be known before the run."""
    stages = set(stages)
    out: dict[str, int] = {}
    if "load" in stages:
        n = FIXED["load"] + seasons + schedule_seasons
        for source, dates in raw_dates.items():
            for i in range(0, dates, BATCH_DATES):
                in_batch = min(BATCH_DATES, dates - i)
                n += 1 + (rows_per_date.get(source, 0) * in_batch > STAGING_ROWS)
        out["load"] = n
    if "gate" in stages:  # validate's completeness and sanity reads, the phase-2 runs, the schedule
        out["gate"] = FIXED["gate"]
    if "derive" in stages:
        chunks = make_chunks(derive_dates, chunk_days, season_of)
        out["derive"] = FIXED["derive"] + bool(checks) + (len(chunks) + LAST_COMMIT + SESSION if chunks else 0)
    if "predict" in stages:
        chunks = make_chunks(predict_dates, chunk_days, season_of)
        out["predict"] = FIXED["predict"] + (PREDICT_PREFETCH + len(chunks) + LAST_COMMIT if chunks else 0)
    if "grade" in stages:
        chunks = make_chunks(grade_dates, chunk_days, season_of)
        out["grade"] = FIXED["grade"] + (len(chunks) + LAST_COMMIT + SESSION if chunks else 0)
    return out


RULE = ("jobs: load 1 per 400-date batch of a source (+1 staging load for a big batch), 1 per season (+1 when its "
        "schedule is missing); derive 1 per chunk (+1 read for all the defensive checks); predict 1 per chunk (its "
        "staging load) after 5 reads of all its inputs; grade 1 per chunk; each chunk's COMMIT rides with the next "
        "job (+1 for the last, +1 lease update per stage); plus each stage's fixed reads (load 12, gate 15, derive 3, "
        "predict 1, grade 2)")
