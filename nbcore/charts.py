"""Pictures people would rather look at than read (matplotlib, static, so nbconvert HTML keeps them).

The completeness colour scale lives here, once, for the validate notebook's heatmap and the
report's before/after grid. It is categorical, not a 0-100 gradient: on a gradient 99.5 % and
100 % look the same and 80 % still looks green, so a hole hides. Here only a complete cell is
green; any missing date makes a cell yellow, orange or red, and stale or waived dates get
colours of their own.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "nbagg")) else None

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


@dataclass(frozen=True)
class Category:
    key: str
    label: str      # the legend's words
    color: str      # cell background
    text: str       # cell text colour, chosen for contrast with the background


CATEGORIES = [
    Category("complete", "complete (100 %)", "#1a7f37", "#ffffff"),
    Category("stale", "all present, some stale", "#8250df", "#ffffff"),
    Category("waived", "missing dates all waived", "#6e7781", "#ffffff"),
    Category("almost", "90 % to under 100 %", "#f2cc60", "#1f2328"),
    Category("partial", "50 % to under 90 %", "#fb8f44", "#1f2328"),
    Category("low", "under 50 %", "#cf222e", "#ffffff"),
]
BY_KEY = {c.key: c for c in CATEGORIES}


def category(pct: float, missing: int | None = None, waived: int = 0, stale: int = 0) -> Category:
    """The colour category of one (table, season) cell.

    ``missing`` counts dates missing and not waived (None: infer from ``pct``). A cell is
    complete only at exactly 100 % with nothing stale."""
    if pct != pct:  # no expected dates
        pct = 100.0
    if missing is None:
        missing = 0 if pct >= 100 else 1
    if missing > 0:
        return BY_KEY["almost"] if pct >= 90 else BY_KEY["partial"] if pct >= 50 else BY_KEY["low"]
    if waived > 0:
        return BY_KEY["waived"]
    if stale > 0:
        return BY_KEY["stale"]
    return BY_KEY["complete"]


def season_label(season) -> str:
    try:
        y = int(season)
    except (TypeError, ValueError):
        return str(season)
    return f"{y}-{(y + 1) % 100:02d}"


def pct_text(pct: float) -> str:
    """Never rounds a hole up: 99.96 shows as "99.9", only 100 as "100"."""
    if pct != pct:
        return "—"
    return "100" if pct >= 100 else f"{int(pct * 10) / 10:.1f}"


def _cells(data: pd.DataFrame) -> pd.DataFrame:
    """A ``report.cell_status`` frame as is, or a pivot (labels x seasons of %) turned into one."""
    if {"label", "season", "pct"} <= set(data.columns):
        out = data.copy()
    else:
        out = data.rename_axis(index="label", columns="season").stack(future_stack=True).rename("pct").reset_index()
    for c in ("missing", "waived", "stale"):
        if c not in out:
            out[c] = None if c == "missing" else 0
    return out


def completeness_heatmap(data: pd.DataFrame, ax=None, title: str | None = None):
    """Tables (rows) x seasons (columns), each cell coloured by its completeness category and
    labelled with its % present. ``data``: a pivot of % (labels x seasons) or the cells of
    ``nbcore.report.cell_status``."""
    cells = _cells(data)
    labels = list(dict.fromkeys(cells.label))
    seasons = sorted(cells.season.unique())
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * max(3, len(seasons)) + 4.2, 0.34 * max(4, len(labels)) + 1.3))
    ax.set_xlim(-0.5, len(seasons) - 0.5)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    for r in cells.itertuples(index=False):
        i, j = labels.index(r.label), seasons.index(r.season)
        missing = None if r.missing is None or r.missing != r.missing else int(r.missing)
        cat = category(float(r.pct), missing, int(r.waived or 0), int(r.stale or 0))
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=cat.color, edgecolor="white", linewidth=1.5))
        note = f"\n{int(r.stale)} stale" if cat.key == "stale" else (f"\n{int(r.waived)} waived" if cat.key == "waived" else "")
        ax.text(j, i, pct_text(float(r.pct)) + note, ha="center", va="center", fontsize=10, color=cat.text)
    ax.set_xticks(range(len(seasons)), [season_label(s) for s in seasons], fontsize=10)
    ax.set_yticks(range(len(labels)), labels, fontsize=10)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title or "% of expected game dates present", fontsize=11, loc="left")
    used = {category(float(r.pct), None if r.missing is None or r.missing != r.missing else int(r.missing),
                     int(r.waived or 0), int(r.stale or 0)).key for r in cells.itertuples(index=False)}
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=c.color) for c in CATEGORIES if c.key in used or c.key == "complete"]
    names = [c.label for c in CATEGORIES if c.key in used or c.key == "complete"]
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    ax.figure.tight_layout()
    return ax


def heatmap_alt(data: pd.DataFrame, what: str = "Completeness") -> str:
    """Alt text for a heatmap: which cells are not complete, in words."""
    cells = _cells(data)
    bad = []
    for r in cells.itertuples(index=False):
        missing = None if r.missing is None or r.missing != r.missing else int(r.missing)
        cat = category(float(r.pct), missing, int(r.waived or 0), int(r.stale or 0))
        if cat.key != "complete":
            bad.append(f"{r.label} {season_label(r.season)} {pct_text(float(r.pct))} %" + ("" if cat.key in ("almost", "partial", "low") else f" ({cat.key})"))
    n = len(cells)
    if not bad:
        return f"{what}: all {n} table-season cells are complete (100 %)."
    return f"{what}: {len(bad)} of {n} table-season cells are not complete: " + "; ".join(bad) + "."
