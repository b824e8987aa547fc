"""The warehouse analysts open: ``<root>/warehouse.duckdb`` holds one view per registered table
over the parquet files (never a copy of the data) plus a ``tables`` view of every column's type,
unit and meaning; ``sensorfleet sql`` queries it read-only.

Names are imported on first use (``sensorfleet.lazy_exports``): ``sensorfleet sql --help``
starts without DuckDB.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports name the lazy exports for type checkers)
from __future__ import annotations

from typing import TYPE_CHECKING

from sensorfleet.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "build": ["WAREHOUSE_FILE", "WarehouseBuild", "build_warehouse", "warehouse_path"],
    "query": ["ReadOnlyQueryError", "connect_read_only", "run_query"],
})

if TYPE_CHECKING:
    from sensorfleet.warehouse.build import (
        WAREHOUSE_FILE,
        WarehouseBuild,
        build_warehouse,
        warehouse_path,
    )
    from sensorfleet.warehouse.query import ReadOnlyQueryError, connect_read_only, run_query
