"""Build the demo: phase 1 files in a local bucket, and the warehouse's *before* state.

The before state is what the real platform looks like mid-incident: raw tables loaded
except the hole dates, downstream phases built by the real stages over every date that is
not a hole. ``build_demo`` starts from nothing each time (it deletes the DuckDB file).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd
from ..progress import tqdm

from .. import schema
from ..params import RunParams
from ..sources import BOXSCORES, GAMEBOOK, PROPS, SCHEDULE, fault_marker_path, file_path
from ..sources.render import RENDERERS, render_schedule
from ..warehouse import Warehouse, open_warehouse
from .holes import HoleSpec, choose_holes
from .league import League, generate_league

HOLES_FILE = "_demo/holes.json"
QUIRKS_FILE = "_demo/quirks.json"

# Downstream stages register how they build their part of the before state:
# fn(warehouse, params, league, holes) -> None, called in order after raw is loaded.
BEFORE_STATE_STEPS: list[Callable[[Warehouse, RunParams, League, HoleSpec], None]] = []


def derive_phases_3_4(wh: Warehouse, params: RunParams, league: League, holes: HoleSpec) -> None:
    """Phases 3 and 4 over every final date but the downstream holes (nbcore.derive, backfill mode)."""
    from .before_state import derive_phases_3_4 as step

    step(wh, params, league, holes)


BEFORE_STATE_STEPS.append(derive_phases_3_4)


def predict_phase_5(wh: Warehouse, params: RunParams, league: League, holes: HoleSpec) -> None:
    """Phase 5 over every final date but the downstream holes (nbcore.predict)."""
    from .before_state import predict_phase_5 as step

    step(wh, params, league, holes)


def grade_phase_5b(wh: Warehouse, params: RunParams, league: League, holes: HoleSpec) -> None:
    """Phase 5B over the predicted dates but the ungraded season (nbcore.grade)."""
    from .before_state import grade_phase_5b as step

    step(wh, params, league, holes)


BEFORE_STATE_STEPS.extend([predict_phase_5, grade_phase_5b])


@dataclass
class DemoBuild:
    bucket: Path
    warehouse: str
    holes: HoleSpec
    league: League
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        s = self.league.schedule
        final = s[s.game_status == "final"]
        return {
            "bucket": str(self.bucket),
            "warehouse": self.warehouse,
            "games": int(len(final)),
            "game_dates": int(final.game_date.nunique()),
            "player_game_rows": int(len(self.league.boxscores)),
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
        }


def raw_frames(league: League) -> dict[str, pd.DataFrame]:
    """The league as phase 2 rows (what loading every file gives), keyed by table name."""
    now = pd.Timestamp(datetime.now(timezone.utc).replace(tzinfo=None))
    sched = league.schedule.copy()
    sched["source_file"] = sched.season_year.map(lambda y: file_path(SCHEDULE, season_year=int(y)))
    out = {SCHEDULE: sched}
    for source, frame in ((BOXSCORES, league.boxscores), (GAMEBOOK, league.gamebook), (PROPS, league.props)):
        f = frame.copy()
        f["source_file"] = f.game_date.map(lambda d: file_path(source, d))
        if source == PROPS:
            f["snapshot_at"] = f.game_date.map(lambda d: pd.Timestamp(datetime.combine(d, datetime.min.time())) + pd.Timedelta(hours=22))
        cols = [c for c in schema.table(source).columns if c in f.columns]
        out[source] = f[cols]
    for f in out.values():
        f["loaded_at"] = now
    return out


def write_bucket(league: League, bucket: Path, holes: HoleSpec, progress: bool = True) -> int:
    """Write every phase 1 file (one per source per game date, one schedule per season)."""
    if bucket.exists():
        shutil.rmtree(bucket)
    bucket.mkdir(parents=True)
    n = 0
    for season, games in league.schedule.groupby("season_year"):
        path = bucket / file_path(SCHEDULE, season_year=int(season))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(render_schedule(int(season), games), ensure_ascii=False))
        n += 1
    final = league.schedule[league.schedule.game_status == "final"]
    sched_by_day = _records_by_day(final)
    frames = {BOXSCORES: league.boxscores, GAMEBOOK: league.gamebook, PROPS: league.props}
    for source, frame in frames.items():
        (bucket / source).mkdir(parents=True, exist_ok=True)
        by_day = _records_by_day(frame)
        never = set(league.quirks.no_files.get(source, [])) if league.quirks else set()
        for day in tqdm(sorted(sched_by_day), desc=f"bucket {source}", disable=not progress, leave=False):
            if day in never:  # the scraper never ran for these games (nbcore.demo.quirks)
                continue
            doc = RENDERERS[source](day, sched_by_day[day], by_day.get(day, []))
            (bucket / file_path(source, day)).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
            n += 1
    for source, day in holes.transient_faults:
        marker = bucket / fault_marker_path(source, day)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("the next read of this file fails once (demo transient fault)\n")
    holes.save(bucket / HOLES_FILE)
    if league.quirks:
        (bucket / QUIRKS_FILE).write_text(json.dumps(league.quirks.to_json(), indent=2))
    return n


def _records_by_day(frame: pd.DataFrame) -> dict[date, list[dict]]:
    out: dict[date, list[dict]] = {}
    for r in frame.astype(object).where(frame.notna(), None).to_dict("records"):
        out.setdefault(r["game_date"], []).append(r)
    return out


def load_raw_before_state(wh: Warehouse, league: League, holes: HoleSpec) -> dict[str, int]:
    """Raw tables as the platform has them: every date except the holes."""
    frames = raw_frames(league)
    counts = {}
    for name, frame in frames.items():
        t = schema.table(name)
        keep = frame
        if name in holes.raw_missing:
            keep = keep[~keep.game_date.isin(set(holes.raw_missing[name]))]
        for day, games in holes.partial.get(name, {}).items():
            keep = keep[~((keep.game_date == day) & keep.game_id.isin(games))]
        lo, hi = keep.game_date.min(), keep.game_date.max()
        counts[name] = wh.replace_range(t.fqn, lo, hi, frame=keep)
    return counts


def build_demo(params: RunParams, progress: bool = True) -> DemoBuild:
    """Generate the league, write the bucket, build the before state from nothing."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    league = generate_league(params.demo.seed, params.demo.scale)
    timings["generate"] = time.perf_counter() - t0
    holes = choose_holes(league.schedule, params.demo.seed, params.demo.scale, params.demo.transient_faults)
    if league.quirks:
        for source, days in (*league.quirks.no_lines.items(), *league.quirks.no_files.items()):
            holes.source_gaps[source] = sorted(set(holes.source_gaps.get(source, [])) | set(days))

    t = time.perf_counter()
    bucket = Path(params.bucket)
    write_bucket(league, bucket, holes, progress)
    timings["bucket"] = time.perf_counter() - t

    t = time.perf_counter()
    if params.backend == "duckdb":
        for suffix in ("", ".wal"):
            Path(str(params.duckdb_path) + suffix).unlink(missing_ok=True)
    with open_warehouse(params) as wh:
        if params.backend != "duckdb":
            wh.drop_all()  # start from nothing on BigQuery too
            wh.ensure_schema()
        load_raw_before_state(wh, league, holes)
        timings["raw"] = time.perf_counter() - t
        for step in BEFORE_STATE_STEPS:
            t = time.perf_counter()
            step(wh, params, league, holes)
            timings[step.__name__] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return DemoBuild(bucket=bucket, warehouse=str(params.duckdb_path if params.backend == "duckdb" else params.bigquery.project),
                     holes=holes, league=league, timings=timings)


def load_holes(bucket: str | Path) -> HoleSpec:
    return HoleSpec.load(Path(bucket) / HOLES_FILE)
