"""What every stage notebook does in its first cells.

A notebook's parameters cell holds ``params_file`` (default: ``params/demo.yaml``) and
``run_dir`` (default: none, meaning "not part of a run": results are shown, not archived).
papermill may inject any ``RunParams`` field as well (``papermill ... -f params/demo.yaml``).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .archive import RunArchive
from .params import RunParams, params_from_notebook


def setup(params_file: str | None, run_dir: str | None, namespace: dict[str, Any]) -> tuple[RunParams, RunArchive | None]:
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.width", 160)
    params = params_from_notebook(params_file, namespace)
    archive = RunArchive.open(run_dir) if run_dir else None
    return params, archive
