"""Targets: which dates each table of a run is rebuilt on, and why; the one place they are chosen.

The plan (``nbcore.plan``: ``runbook plan`` and ``plan.json``) and a stage run by hand
(``nbcore.program.one_stage``) both call ``planned_targets``; stages only execute the chunks
``stage_program`` cuts from the targets. The seeds are partition states (``nbcore.state``), the
closure follows recorded lineage (``nbcore.lineage``).
"""
from __future__ import annotations

from datetime import date
from typing import Any, Optional

import pandas as pd

from . import lineage, schema
from .chunks import make_chunks
from .params import RunParams
from .stages import PHASE_STAGE
from .state import PartitionStates
from .walkforward import model_window_start
from .warehouse import Warehouse


def season_of_dates(wh: Warehouse, states: PartitionStates) -> dict[date, int]:
    """Game date -> season of every completed game: the warehouse's schedule, plus the schedule
    files' games of the seasons it has none for yet (a first run plans from the files)."""
    games = wh.query_file("derive/final_games")[["game_date", "season_year"]]
    from_files = states.expected.from_files
    if from_files:
        extra = states.expected.games[states.expected.games.season_year.isin(from_files)]
        games = pd.concat([games, extra[["game_date", "season_year"]]], ignore_index=True)
    return dict(zip(pd.to_datetime(games.game_date).dt.date, games.season_year.astype(int)))


def scope_dates(params: RunParams, season_of: dict[date, int]) -> list[date]:
    """Completed game dates inside the run's seasons and date window."""
    lo, hi = params.date_bounds()
    seasons = set(params.season_list)
    return sorted(d for d, s in season_of.items() if lo <= d <= hi and s in seasons)


def planned_targets(wh: Warehouse, params: RunParams, states) -> tuple[lineage.Targets, dict, list[date]]:
    """Per derived table of the run's stages, the dates the run rebuilds and why: the one place
    targets are chosen (stages execute the chunks cut from them, ``nbcore.program``).

    Seeds, from the partition states (``nbcore.state``): each table's missing and failed dates,
    its stale dates (with the changed upstream), and, when the run loads, the raw dates load will
    fill. The closure over the lineage graph then adds every partition whose window holds a date
    rebuilt upstream, in dependency order, so a blocked partition is a target exactly when the
    run rebuilds what blocks it. ``repredict`` / ``regrade`` request every date.
    Dates a required source is waived on (and absent) are never targets: they are returned apart
    (``skipped``). Returns the targets, the stale predictions kept under ``freeze_predictions``,
    and the skipped dates."""
    season_of = season_of_dates(wh, states)
    scope = scope_dates(params, season_of)
    scope_set = set(scope)
    skipped = sorted({d for s in params.required_sources
                      for d in states.dates(s, "waived")} & scope_set) if "derive" in params.stages else []
    candidates = [d for d in scope if d not in set(skipped)]
    tables = [t for t in lineage.ordered_tables()
              if lineage.stage_of(t) in params.stages and params.table_selected(t)]
    seeds: dict[str, dict[date, lineage.Cause]] = {}
    if "load" in params.stages:  # raw dates load will fill: what reads them is rebuilt after
        for t in schema.tracked_tables():
            if t.phase == "2" and params.table_selected(t.name):
                seeds[t.fqn] = {d: lineage.Cause("missing") for d in states.absent(t.name) if d in scope_set}
    for t in tables:  # a blocked partition is no seed: it joins below when the run rebuilds its upstream
        mine = seeds.setdefault(t, {})
        for st in ("missing", "failed"):
            mine.update({d: lineage.Cause(st) for d in states.dates(t, st) if d in scope_set})
        for d, c in states.stale_causes.get(t, {}).items():
            if d in scope_set:
                mine.setdefault(d, c)
        for flag, table in ((params.repredict, lineage.PREDICTIONS), (params.regrade, lineage.ACCURACY)):
            if flag and t == table:
                held = set(states.dates(t, "blocked", "waived"))
                mine.update({d: lineage.Cause("requested") for d in candidates if d not in mine and d not in held})
    windows = lineage.Windows.from_dates(season_of, model_window_start(params.refit_days, params.train_window_days))
    frozen_tables = [lineage.PREDICTIONS] if params.freeze_predictions and not params.repredict else []
    frozen: dict = {}
    if frozen_tables and lineage.PREDICTIONS in seeds:
        # issued predictions stay: their stale dates are listed, and grades follow only what predict
        # really writes (the missing predictions) and what derive changes
        preds = seeds[lineage.PREDICTIONS]
        frozen[lineage.PREDICTIONS] = {d: c for d, c in preds.items() if c.kind == "stale"}
        seeds[lineage.PREDICTIONS] = {d: c for d, c in preds.items() if c.kind != "stale"}
    full = lineage.closure(seeds, {t: candidates for t in tables}, windows, tables=tables, frozen=frozen_tables)
    out = {t: {d: c for d, c in full.of(t).items() if d in scope_set and d not in set(skipped)} for t in tables}
    for t in tables:  # a date without rows that joins through the closure is missing (a blocked one), not stale
        for d in set(states.absent(t)) & set(out[t]):
            if out[t][d].kind == "stale":
                out[t][d] = lineage.Cause("missing")
    if lineage.PREDICTIONS in out:  # games not final yet are predicted too (the product's upcoming games)
        out[lineage.PREDICTIONS].update({d: lineage.Cause("upcoming") for d in _upcoming(wh, params, set(season_of))})
    return lineage.Targets(out, season_of=season_of), frozen, skipped


def _upcoming(wh: Warehouse, params: RunParams, final_dates: set[date]) -> list[date]:
    """Dates in scope with feature rows for games not final yet and a prediction still to make (all
    of them with ``repredict``): no schedule state covers them, since only completed games are expected."""
    start, end = params.date_bounds()
    f = wh.query_file("state/upcoming_dates", {"start_date": start, "end_date": end, "seasons": params.season_list})
    f["game_date"] = pd.to_datetime(f.game_date).dt.date
    todo = f.feature_rows > 0 if params.repredict else f.player_games_missing > 0
    return sorted(d for d in f.game_date[todo] if d not in final_dates)


CHUNKED_STAGES = ("derive", "predict", "grade")


def stage_program(params: RunParams, targets: lineage.Targets, stage: str, frozen: Optional[dict] = None,
                  skipped: Optional[list[date]] = None) -> dict[str, Any]:
    """What one chunked stage executes, as ``plan.json`` holds it: its chunks (the union of its
    tables' target dates, cut by ``make_chunks``), each table's dates with their causes, and the
    dates it leaves out on purpose (``skipped``: waived; ``frozen``: stale predictions kept)."""
    tables = {t.fqn: t for t in schema.tracked_tables() if PHASE_STAGE.get(t.phase) == stage
              and params.table_selected(t.name)}
    return {
        "chunks": [[d.isoformat() for d in c]
                   for c in make_chunks(_stage_dates(params, targets, stage), params.chunk_days, targets.season_of)],
        "targets": {fqn: {d.isoformat(): c.text(fqn) for d, c in sorted(targets.of(fqn).items())} for fqn in tables},
        "skipped": [d.isoformat() for d in (skipped or [])] if stage == "derive" else [],
        "frozen": [d.isoformat() for t, cs in (frozen or {}).items() if t in tables for d in sorted(cs)],
    }


def _stage_dates(params: RunParams, targets: lineage.Targets, stage: str) -> list[date]:
    """The dates a stage's chunks cover: the union of its selected tables' planned dates."""
    return sorted({d for t in schema.tracked_tables() if PHASE_STAGE.get(t.phase) == stage
                   and params.table_selected(t.name) for d in targets.of(t.fqn)})


