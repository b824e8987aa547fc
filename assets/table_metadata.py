"""Dagster metadata derived from the table registry: column schemas and row counts."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetDep,
    AssetKey,
    AssetSpec,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
)

from sensorfleet.registry import get_table

COLUMN_SCHEMA = "dagster/column_schema"
ROW_COUNT = "dagster/row_count"
PARTITION_ROW_COUNT = "dagster/partition_row_count"


def column_schema(table: str) -> TableSchema:
    """The registered table's columns as Dagster's column schema: type, and a description that
    carries the unit and the EMVA 1288 symbol (``Column.meaning``)."""
    spec = get_table(table)
    return TableSchema(columns=[
        TableColumn(
            name=c.name, type=c.sql_type, description=c.meaning(),
            constraints=TableColumnConstraints(other=[f"bounds: {c.bound.describe()}"] if c.bound else []),
        )
        for c in spec.columns
    ])


def definition_metadata(*tables: str) -> dict[str, object]:
    """Definition metadata of an asset that writes ``tables`` (the first is its own table)."""
    meta: dict[str, object] = {COLUMN_SCHEMA: column_schema(tables[0]), "table": tables[0]}
    for extra in tables[1:]:
        meta[f"column_schema/{extra}"] = column_schema(extra)
    return meta


def row_count_metadata(rows: int, partitioned: bool) -> dict[str, MetadataValue]:
    """``dagster/partition_row_count`` for a partition's rows, ``dagster/row_count`` for a whole table."""
    return {PARTITION_ROW_COUNT if partitioned else ROW_COUNT: MetadataValue.int(rows)}


def table_spec(table: str, *, group: str, owner: str, description: str, code_version: str,
               deps: Sequence[str | AssetKey | AssetDep] = ()) -> AssetSpec:
    """The spec of an asset that is one registered parquet table: kind parquet, its owner, its
    layer's code version, and the column schema from the registry."""
    return AssetSpec(table, group_name=group, deps=list(deps), kinds={"parquet"}, owners=[owner],
                     metadata=definition_metadata(table), description=description, code_version=code_version)
