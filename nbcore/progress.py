"""Progress bars that work in a terminal, in JupyterLab and in papermill-executed notebooks.

``tqdm.auto`` picks the notebook widget when ipywidgets is installed and otherwise falls
back to text bars, warning "IProgress not found" into every archived notebook. Text bars
are what an archived notebook can keep, so the warning is silenced here, once.
"""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm  # noqa: F401

try:  # tqdm.auto warns again when a bar is created in a kernel without ipywidgets
    from tqdm import TqdmExperimentalWarning, TqdmWarning

    warnings.filterwarnings("ignore", category=TqdmWarning, message=".*IProgress not found.*")
    warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
except ImportError:  # pragma: no cover
    pass

__all__ = ["tqdm"]
