"""Pictures people would rather look at than read (matplotlib, static, so nbconvert HTML keeps them)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "nbagg")) else None

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def completeness_heatmap(pivot: pd.DataFrame, ax=None, title: str | None = None):
    """Tables (rows) x seasons (columns), colored by % of expected dates present."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1.4 * max(3, pivot.shape[1]) + 3.5, 0.38 * max(4, len(pivot)) + 1))
    data = pivot.to_numpy(dtype=float)
    im = ax.imshow(data, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(pivot.shape[1]), [f"{c}-{(int(c) + 1) % 100:02d}" for c in pivot.columns])
    ax.set_yticks(range(len(pivot)), list(pivot.index))
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            if v == v:
                ax.text(j, i, f"{v:.0f}" if v in (0, 100) else f"{v:.1f}", ha="center", va="center", fontsize=8,
                        color="black")
    ax.set_title(title or "% of expected game dates present")
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    ax.figure.tight_layout()
    return ax
