"""Progress bars that work in a terminal, in JupyterLab and in papermill-executed notebooks.

Live bars are for a person watching: a terminal or a notebook open in JupyterLab. In a
notebook the runbook executes (its kernel has ``RUNBOOK_RUN_ID`` set), nobody watches, and
every redraw of a text bar is archived as stderr: about thirty lines on the pink error
background of the derive, predict and grade pages. There, a bar draws nothing while it runs
and prints one line on stdout when it closes::

    derive: 3/3 chunks in 8.9 s

``tqdm.auto`` also warns "IProgress not found" (no ipywidgets) into every notebook; that
warning is silenced here, once.
"""
from __future__ import annotations

import os
import sys
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm as _live_tqdm
    from tqdm.std import tqdm as _std_tqdm

try:  # tqdm.auto warns again when a bar is created in a kernel without ipywidgets
    from tqdm import TqdmExperimentalWarning, TqdmWarning

    warnings.filterwarnings("ignore", category=TqdmWarning, message=".*IProgress not found.*")
    warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
except ImportError:  # pragma: no cover
    pass

RUN_ENV = "RUNBOOK_RUN_ID"  # set by the runbook for the kernels it starts (nbcore.runbook)


class _Discard:
    """A file that swallows the bar's redraws."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


class SummaryBar(_std_tqdm):
    """A tqdm that draws nothing while it runs and prints one summary line when it closes."""

    def __init__(self, *args, **kwargs):
        kwargs["file"] = _Discard()
        super().__init__(*args, **kwargs)
        self._summarised = False

    def summary(self) -> str:
        """"derive: 3/3 chunks in 8.9 s" (or "3 chunks" when the total is unknown)."""
        d = self.format_dict
        n, total, unit = d.get("n", 0), d.get("total"), d.get("unit") or "it"
        units = unit if unit.endswith("s") or unit == "it" else unit + "s"
        count = f"{n}/{total}" if total not in (None, 0) else f"{n}"
        desc = f"{self.desc.rstrip(': ')}: " if self.desc else ""
        return f"{desc}{count} {units if (total or n) != 1 else unit} in {d.get('elapsed', 0):.1f} s"

    def close(self) -> None:
        if not getattr(self, "_summarised", True) and not self.disable and self.leave is not False:
            self._summarised = True
            print(self.summary(), file=sys.stdout, flush=True)
        elif hasattr(self, "_summarised"):
            self._summarised = True
        super().close()


def archived() -> bool:
    """True in a kernel the runbook started: its output is archived, not watched."""
    return bool(os.environ.get(RUN_ENV))


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm`` for a person watching; ``SummaryBar`` in a runbook-executed notebook."""
    if archived():
        return SummaryBar(*args, **kwargs)
    return _live_tqdm(*args, **kwargs)


__all__ = ["tqdm", "SummaryBar", "archived"]
