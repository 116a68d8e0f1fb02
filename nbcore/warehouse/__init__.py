"""Warehouse backends: where the pipeline's tables live.

``open_warehouse(params)`` returns the backend the run parameters ask for. Both backends
take BigQuery Standard SQL with ``@query_parameters`` and tables named ``dataset.table``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Warehouse, WarehouseError

if TYPE_CHECKING:  # pragma: no cover
    from ..params import RunParams


def open_warehouse(params: "RunParams", **kwargs) -> Warehouse:
    """The backend for these run parameters, schema created if missing."""
    if params.backend == "duckdb":
        from .duckdb import DuckDBWarehouse

        wh: Warehouse = DuckDBWarehouse(params.duckdb_path, **kwargs)
    elif params.backend == "bigquery":
        from .bigquery import BigQueryWarehouse

        wh = BigQueryWarehouse.from_params(params, **kwargs)
    else:  # pragma: no cover - pydantic rejects it first
        raise WarehouseError(f"unknown backend {params.backend!r}")
    wh.ensure_schema()
    return wh


def open_for_reading(params: "RunParams") -> Warehouse:
    """A warehouse for looking only (validate, status): DuckDB opens read-only, so looking never takes the
    file from a running backfill. A DuckDB file that does not exist yet (a first run with
    ``create_warehouse: true``) is created with its schema instead."""
    if params.backend == "duckdb":
        from pathlib import Path

        if Path(params.duckdb_path).is_file():
            return open_warehouse(params, read_only=True)
    return open_warehouse(params)


__all__ = ["Warehouse", "WarehouseError", "open_for_reading", "open_warehouse"]
