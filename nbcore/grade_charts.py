"""Accuracy charts for the grade notebook and the report (matplotlib, static).

Each function takes the rows of ``nbcore.grade.graded_rows`` (graded, not voided) and draws
one picture, one line / series per prediction system, on a given or new Axes.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "nbagg")) else None

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .grade import wilson_interval  # noqa: E402
from .report import BREAK_EVEN, season_label  # noqa: E402  (52.4 %: a bet at −110 odds breaks even)

CONFIDENCE_BANDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 1.0001]
BREAK_EVEN_LABEL = "52.4 % to break even at −110 odds"
BREAK_EVEN_COLOR = "#bc4c00"


def _axes(ax, size=(8, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def error_distribution(rows: pd.DataFrame, ax=None, clip: float = 25.0):
    """Histogram of signed error (predicted - actual) per system; the legend shows MAE and bias."""
    ax = _axes(ax)
    bins = np.arange(-clip, clip + 1.0, 1.0)
    for system_id, g in rows.groupby("system_id"):
        err = g.signed_error.astype(float)
        ax.hist(err.clip(-clip, clip), bins=bins, histtype="step", density=True, linewidth=1.4,
                label=f"{system_id}: MAE {err.abs().mean():.2f}, bias {err.mean():+.2f}")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("predicted - actual points")
    ax.set_ylabel("share of graded predictions")
    ax.set_title("Error distribution")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def hit_rate_table(rows: pd.DataFrame, bands: list[float] = CONFIDENCE_BANDS) -> pd.DataFrame:
    """Hit rate of OVER/UNDER calls (pushes left out) per system and confidence band, with its
    95 % Wilson interval: a calibrated system climbs with its confidence."""
    calls = rows[rows.was_correct.notna()].copy()
    calls["band"] = pd.cut(calls.confidence.astype(float), bands, right=False)
    out = []
    for (system_id, band), g in calls.groupby(["system_id", "band"], observed=True):
        n, k = len(g), int(g.was_correct.astype(bool).sum())
        lo, hi = wilson_interval(k, n)
        out.append({"system_id": system_id, "band": str(band), "band_mid": band.mid, "calls": n,
                    "hit_rate": k / n, "low": lo, "high": hi})
    return pd.DataFrame(out, columns=["system_id", "band", "band_mid", "calls", "hit_rate", "low", "high"])


def hit_rate_by_confidence(rows: pd.DataFrame, ax=None, bands: list[float] = CONFIDENCE_BANDS):
    """Hit rate per confidence band per system, with 95 % intervals; 50 % is a coin flip, 52.4 % breaks even at −110."""
    ax = _axes(ax)
    table = hit_rate_table(rows, bands)
    systems = sorted(table.system_id.unique())
    width = 0.8 / max(1, len(systems))
    for i, system_id in enumerate(systems):
        t = table[table.system_id == system_id].reset_index(drop=True)
        x = np.arange(len(t)) + (i - (len(systems) - 1) / 2) * width
        ax.errorbar(x, t.hit_rate, yerr=[t.hit_rate - t.low, t.high - t.hit_rate], fmt="o", capsize=3,
                    label=system_id)
    labels = table.drop_duplicates("band").sort_values("band_mid").band.tolist()
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.axhline(BREAK_EVEN, color=BREAK_EVEN_COLOR, linewidth=1.0, label=BREAK_EVEN_LABEL)
    ax.set_xlabel("confidence band")
    ax.set_ylabel("hit rate (OVER/UNDER calls)")
    ax.set_title("Hit rate by confidence band (95 % Wilson intervals)")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def mae_over_season(rows: pd.DataFrame, ax=None):
    """Weekly MAE per system against the week of the season (week 1 = each season's first game
    week), pooled over the seasons in scope: early weeks, with short histories, are harder."""
    ax = _axes(ax, size=(9, 4))
    if rows.empty:
        return ax
    frame = rows[["system_id", "season_year", "game_date", "absolute_error"]].copy()
    first = frame.groupby("season_year").game_date.transform("min")
    frame["week"] = (frame.game_date - first).dt.days // 7 + 1
    weekly = frame.groupby(["system_id", "week"]).absolute_error.agg(["mean", "size"]).reset_index()
    for system_id, g in weekly.groupby("system_id"):
        ax.plot(g.week, g["mean"], marker=".", linewidth=1, label=system_id)
    names = [f"{s}-{(s + 1) % 100:02d}" for s in sorted(frame.season_year.unique())]
    label = names[0] if len(names) == 1 else f"seasons {names[0]} to {names[-1]} pooled"
    ax.set_xlabel(f"week of the season ({label})")
    ax.set_ylabel("MAE (points)")
    ax.set_title("MAE over the season (weekly)")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def hit_rate_by_system(metrics: pd.DataFrame, ax=None):
    """Hit rate of each system per season with its 95 % interval, from the per-system metrics
    (``nbcore.report.grading_metrics``: no warehouse needed); the dashed line is a coin flip, the
    solid one the 52.4 % a bet at −110 odds needs to break even. The report draws the same in HTML
    (``nbcore.report_html.hit_rate_chart``), whose labels stay readable on a phone."""
    f = metrics.dropna(subset=["hit_rate"]).copy() if "hit_rate" in metrics else pd.DataFrame()
    if f.empty:
        return None
    seasons = sorted(f.season_year.unique()) if "season_year" in f else [None]
    systems = sorted(f.system_id.unique())
    ax = _axes(ax, size=(7, 0.2 * len(systems) * len(seasons) + 0.35 * len(systems) + 1.2))
    height = 0.8 / max(1, len(seasons))
    for k, season in enumerate(seasons):
        g = f if season is None else f[f.season_year == season]
        g = g.set_index("system_id").reindex(systems)
        y = np.arange(len(systems)) + (k - (len(seasons) - 1) / 2) * height
        rate = 100 * g.hit_rate.astype(float)
        lo = 100 * g.get("hit_rate_low", g.hit_rate).astype(float)
        hi = 100 * g.get("hit_rate_high", g.hit_rate).astype(float)
        name = "all seasons" if season is None else f"{int(season)}-{(int(season) + 1) % 100:02d}"
        ax.errorbar(rate, y, xerr=[rate - lo, hi - rate], fmt="o", capsize=3, label=name)
    ax.axvline(50, color="grey", linewidth=0.8, linestyle="--")
    ax.axvline(100 * BREAK_EVEN, color=BREAK_EVEN_COLOR, linewidth=1.0, label=BREAK_EVEN_LABEL)
    ax.set_yticks(range(len(systems)), systems, fontsize=10)
    ax.invert_yaxis()
    ax.set_xlabel("hit rate of OVER/UNDER calls, % (bars: 95 % interval; dashed: coin flip; solid: break-even at −110)", fontsize=9)
    ax.legend(fontsize=9, title="season", title_fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.figure.tight_layout()
    return ax


def hit_rate_alt(metrics: pd.DataFrame) -> str:
    """Alt text for ``hit_rate_by_system``: each system's hit rate and interval, in words."""
    f = metrics.dropna(subset=["hit_rate"]) if "hit_rate" in metrics else pd.DataFrame()
    if f.empty:
        return "Hit rate by system: no calls were graded."
    parts = []
    for r in f.itertuples(index=False):
        season = f" {season_label(r.season_year)}" if hasattr(r, "season_year") else ""
        bounds = f" (95 % interval {100 * r.hit_rate_low:.1f} to {100 * r.hit_rate_high:.1f} %)" \
            if hasattr(r, "hit_rate_low") and r.hit_rate_low == r.hit_rate_low else ""
        parts.append(f"{r.system_id}{season}: {100 * r.hit_rate:.1f} %{bounds}")
    return ("Hit rate of OVER/UNDER calls per prediction system, against 50 % for a coin flip and 52.4 % to break "
            "even at −110 odds: " + "; ".join(parts) + ".")
