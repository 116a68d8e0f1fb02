"""The holes the demo warehouse starts with: the same kinds the real platform has.

* a handful of raw dates never loaded (per source), one date missing from every source,
  and one date where a single game's box scores are missing (9 of 10 games loaded);
* analytics, precompute and predictions missing the playoffs of 2021-22, 2022-23, 2023-24
  (and every raw hole date, which downstream processors never saw);
* grading missing the whole 2024-25 season (and every date without predictions).

``HoleSpec`` is written to ``<bucket>/_demo/holes.json`` so tests and people can compare
what validate finds with what was injected.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from .calendar import CALENDARS
from ..sources import BOXSCORES, DATED_SOURCES, GAMEBOOK, PROPS

PLAYOFF_HOLE_SEASONS = (2021, 2022, 2023)
UNGRADED_SEASON = 2024


@dataclass
class HoleSpec:
    raw_missing: dict[str, list[date]] = field(default_factory=dict)  # source -> dates never loaded
    partial: dict[str, dict[date, list[str]]] = field(default_factory=dict)  # source -> date -> missing game ids
    downstream_missing: list[date] = field(default_factory=list)  # phases 3, 4, 5
    ungraded: list[date] = field(default_factory=list)  # phase 5B, on top of downstream_missing
    transient_faults: list[tuple[str, date]] = field(default_factory=list)
    # source -> dates the source never had (nbcore.demo.quirks: no lines posted, no files);
    # waived by params/waivers.example.yaml, so validate lists them as waived, never missing
    source_gaps: dict[str, list[date]] = field(default_factory=dict)

    def missing_dates(self, table: str) -> set[date]:
        """Dates validate must report missing for this table in the before state."""
        t = schema.table(table)
        if t.dataset == "nba_raw":
            return set(self.raw_missing.get(t.name, [])) | set(self.partial.get(t.name, {}))
        if t.name == "prediction_accuracy":
            return set(self.downstream_missing) | set(self.ungraded)
        return set(self.downstream_missing)

    def to_json(self) -> dict:
        d = asdict(self)
        d["raw_missing"] = {k: [x.isoformat() for x in v] for k, v in self.raw_missing.items()}
        d["partial"] = {k: {x.isoformat(): g for x, g in v.items()} for k, v in self.partial.items()}
        d["downstream_missing"] = [x.isoformat() for x in self.downstream_missing]
        d["ungraded"] = [x.isoformat() for x in self.ungraded]
        d["transient_faults"] = [[s, x.isoformat()] for s, x in self.transient_faults]
        d["source_gaps"] = {k: [x.isoformat() for x in v] for k, v in self.source_gaps.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "HoleSpec":
        D = date.fromisoformat
        return cls(
            raw_missing={k: [D(x) for x in v] for k, v in d["raw_missing"].items()},
            partial={k: {D(x): g for x, g in v.items()} for k, v in d["partial"].items()},
            downstream_missing=[D(x) for x in d["downstream_missing"]],
            ungraded=[D(x) for x in d["ungraded"]],
            transient_faults=[(s, D(x)) for s, x in d["transient_faults"]],
            source_gaps={k: [D(x) for x in v] for k, v in d.get("source_gaps", {}).items()},
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: Path) -> "HoleSpec":
        return cls.from_json(json.loads(Path(path).read_text()))


def choose_holes(schedule: pd.DataFrame, seed: int, scale: str, transient_faults: int = 1) -> HoleSpec:
    rng = np.random.default_rng(seed + 1)
    final = schedule[schedule.game_status == "final"]
    regular = final[final.game_type == "regular"]
    # leave each season's first weeks alone so lookback windows start clean
    opener = regular.season_year.map(lambda y: CALENDARS[int(y)].opener)
    settle_days = 21 if scale == "full" else 7
    candidates = sorted(set(regular[(regular.game_date - opener).map(lambda d: d.days) > settle_days].game_date))
    games_per_date = regular.groupby("game_date").size()
    per_source = {BOXSCORES: 3, GAMEBOOK: 2, PROPS: 2} if scale == "full" else {BOXSCORES: 1, GAMEBOOK: 1, PROPS: 1}
    n = sum(per_source.values()) + 2
    picks = [candidates[i] for i in sorted(rng.choice(len(candidates), size=n, replace=False))]
    rng.shuffle(picks)
    spec = HoleSpec(raw_missing={s: [] for s in DATED_SOURCES})
    k = 0
    for source, count in per_source.items():
        spec.raw_missing[source] = sorted(picks[k:k + count])
        k += count
    everywhere = picks[k]  # missing from every source, hence from every phase
    for source in DATED_SOURCES:
        spec.raw_missing[source] = sorted(spec.raw_missing[source] + [everywhere])
    # one busy date with a single game's box scores missing (9 of 10 loaded)
    busy = [d for d in candidates if games_per_date.get(d, 0) >= 8 and d not in picks]
    partial_day = busy[int(rng.integers(0, len(busy)))]
    game = str(rng.choice(sorted(final[final.game_date == partial_day].game_id)))
    spec.partial = {BOXSCORES: {partial_day: [game]}}

    raw_dates = {d for v in spec.raw_missing.values() for d in v}
    playoffs = set(final[(final.game_type == "playoffs") & final.season_year.isin(PLAYOFF_HOLE_SEASONS)].game_date)
    spec.downstream_missing = sorted(raw_dates | playoffs)
    season_dates = set(final[final.season_year == UNGRADED_SEASON].game_date)
    spec.ungraded = sorted(season_dates - set(spec.downstream_missing))
    # transient faults: reads of a raw hole file that fail once, so load must retry
    fault_days = spec.raw_missing[BOXSCORES][:transient_faults]
    spec.transient_faults = [(BOXSCORES, d) for d in fault_days]
    return spec
