"""What every stage notebook does in its first cells, and how it reports a failure.

A notebook's parameters cell declares, each with default ``None``, the run parameters a person
would change for that stage (``params_file``, ``run_dir``, ``seasons``, ``start_date``, ...).
``None`` means "as in the params file"; any other value, set in the cell or given with
``papermill -p NAME VALUE`` / ``-f params/demo.yaml``, overrides the file. ``run_dir`` is the
run archive the driver passes; without it results are shown, not archived.

papermill passes ``-p`` values as scalars, so a list field given one value (``-p seasons 2023``,
``-p tables player_game_summary,team_offense_game_summary``, ``-p seasons "[2023, 2024]"``) is
turned into a list here.
"""
from __future__ import annotations

import typing
from typing import Any

import pandas as pd
import yaml

from . import profiling
from .archive import RunArchive
from .params import RunParams, params_from_notebook


def _list_fields() -> frozenset[str]:
    """RunParams fields that hold a list (seasons, tables, stages, required_sources)."""
    def is_list(tp: Any) -> bool:
        return typing.get_origin(tp) is list or any(is_list(a) for a in typing.get_args(tp))

    return frozenset(name for name, f in RunParams.model_fields.items() if is_list(f.annotation))


LIST_FIELDS = _list_fields()


def overrides_from(namespace: dict[str, Any]) -> dict[str, Any]:
    """The RunParams fields a notebook's namespace sets: declared, and not ``None``."""
    out = {}
    for name in RunParams.model_fields:
        value = namespace.get(name)
        if value is None:
            continue
        if name in LIST_FIELDS and isinstance(value, str) and value.strip().startswith("["):
            value = yaml.safe_load(value)  # -p seasons "[2023, 2024]"
        if name in LIST_FIELDS and not isinstance(value, (list, tuple)):
            value = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else [value]
        out[name] = value
    return out


def setup(params_file: str | None, run_dir: str | None, namespace: dict[str, Any]) -> tuple[RunParams, RunArchive | None]:
    """(params, archive) for a stage notebook: the params file, overridden by the parameters cell."""
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.width", 160)
    profiling.start_from_env()  # ``nbcore.bench profile``: the driver asked its kernels to profile
    params = params_from_notebook(params_file, overrides_from(namespace))
    archive = RunArchive.open(run_dir) if run_dir else None
    return params, archive

