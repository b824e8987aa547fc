"""The warehouse analysts open: ``<root>/warehouse.duckdb`` holds one view per registered table
over the parquet files (never a copy of the data) plus a ``tables`` view of every column's type,
unit and meaning; ``sensorfleet sql`` queries it read-only."""

from sensorfleet.warehouse.build import (
    WAREHOUSE_FILE,
    WarehouseBuild,
    build_warehouse,
    warehouse_path,
)
from sensorfleet.warehouse.query import ReadOnlyQueryError, connect_read_only, run_query

__all__ = [
    "WAREHOUSE_FILE", "ReadOnlyQueryError", "WarehouseBuild", "build_warehouse", "connect_read_only",
    "run_query", "warehouse_path",
]
