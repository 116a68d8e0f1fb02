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


__all__ = ["Warehouse", "WarehouseError", "open_warehouse"]
