"""Warehouse layer: ``<root>/warehouse.duckdb``, one view per table, rebuilt after the tables.

Thin over :func:`sensorfleet.warehouse.build_warehouse`, which publishes the file atomically so an
analyst's open connection never blocks it. Runs in the concurrency pool ``warehouse_writer``
(dagster.yaml: one slot) so two builds never race.
"""

# No `from __future__ import annotations`: Dagster reads the resource annotation at decoration time.
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets.captures import CAPTURES, REJECTIONS
from assets.characterization import MODULE_CHANNEL_STATS, MODULE_STATS, PIXEL_DEFECTS
from assets.labels import FINAL_TEST_ASSET
from assets.resources import StorageResource
from sensorfleet.features import MODULE_FEATURES
from sensorfleet.warehouse import build_warehouse, run_query

GROUP = "warehouse"
CODE_VERSION = "1"
"""Version of this layer's code as Dagster sees it: bump it when a change alters what the
step writes, and every day materialized with the old one shows as stale in the UI."""
WAREHOUSE = "warehouse"
WAREHOUSE_POOL = "warehouse_writer"


@asset(
    name=WAREHOUSE, group_name=GROUP, code_version=CODE_VERSION, kinds={"duckdb"}, pool=WAREHOUSE_POOL, owners=["team:data-engineering"],
    deps=[CAPTURES, REJECTIONS, MODULE_STATS, MODULE_CHANNEL_STATS, PIXEL_DEFECTS, MODULE_FEATURES, FINAL_TEST_ASSET],
    description="warehouse.duckdb under the data root: one DuckDB view per table over its parquet files "
                "(never a copy) and a `tables` view of every column's type, unit and meaning. "
                "Query it with `sensorfleet sql` or `duckdb -readonly`.",
)
def warehouse(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
    paths = storage.paths()
    built = build_warehouse(paths)
    counts = run_query(paths, " UNION ALL ".join(
        f"SELECT '{name}' AS view, count(*) AS rows FROM {name}" for name in built.views))
    rows = dict(zip(counts["view"].to_list(), counts["rows"].to_list(), strict=True))
    context.log.info(f"warehouse {built.path}: {rows}")
    return MaterializeResult(metadata={
        "path": MetadataValue.path(str(built.path)),
        "rows_per_view": MetadataValue.json(rows),
        "empty_views": MetadataValue.json(list(built.empty_views)),
        "query": MetadataValue.md(f"`sensorfleet sql --root {paths.root_url or paths.root} \"SELECT * FROM tables\"`"),
    })
