"""Build ``warehouse.duckdb``: views over the parquet tables, published atomically.

DuckDB lets one process write a database file, and while any process holds it open no other can
open it for writing. So the warehouse is never written in place: a new file is built under a
hidden temporary name beside it and moved over the old one with ``os.replace``. An analyst's open
connection keeps reading the old file (its inode stays alive) and sees the new views when it
reconnects; a materialization never waits for a reader.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

import sensorfleet.features.daily  # noqa: F401  (registers the feature tables, which get views too)
from sensorfleet.config import Paths
from sensorfleet.registry import TABLES, Table
from sensorfleet.staging import publish_root, register_object_store
from sensorfleet.tables import sweep_stale_temporaries

WAREHOUSE_FILE = "warehouse.duckdb"


def warehouse_path(paths: Paths) -> Path:
    """Where the warehouse of a data root lives: ``<root>/warehouse.duckdb``."""
    return paths.root / WAREHOUSE_FILE


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*/[!.]*.parquet"))


def view_sql(table: Table, tables_root: Path, location: str | None = None) -> str:
    """``CREATE VIEW`` of one table: over its parquet files with the hive partition column typed
    as a date, or, while the table has no file yet, an empty view with the registry's columns (so
    every query an analyst writes binds on a new root too). ``location``: where readers find
    ``tables_root`` (its ``s3://`` URL for an object root; default the local folder)."""
    folder = tables_root / table.name
    if _has_files(folder):
        glob = _literal(f"{location or tables_root}/{table.name}/*/*.parquet")
        source = (
            f"SELECT * FROM read_parquet({glob}, hive_partitioning = true, union_by_name = true, "
            f"hive_types = {{{_literal(table.partition_column)}: 'DATE'}})"
        )
    else:
        columns = [f"CAST(NULL AS {c.sql_type}) AS {c.name}" for c in table.columns]
        columns.append(f"CAST(NULL AS DATE) AS {table.partition_column}")
        source = f"SELECT {', '.join(columns)} WHERE false"
    return f"CREATE VIEW {table.name} AS {source}"


def tables_view_sql() -> str:
    """``CREATE VIEW tables``: one row per (table, column) with type, unit, meaning, EMVA 1288
    symbol and section, physical bounds, and whether it is a model feature."""
    rows = []
    for t in TABLES.values():
        for position, c in enumerate(t.columns, start=1):
            values = [t.name, str(position), c.name, c.sql_type, c.unit, c.description, c.symbol, c.section,
                      c.bound.describe() if c.bound else "", "true" if c.feature else "false",
                      "true" if c.name in t.key else "false", t.grain]
            rows.append("(" + ", ".join(_literal(v) if i not in (1, 9, 10) else v for i, v in enumerate(values)) + ")")
    names = ("table_name, position, column_name, type, unit, meaning, emva1288_symbol, emva1288_section, "
             "bounds, is_feature, is_key, grain")
    return f"CREATE VIEW tables AS SELECT * FROM (VALUES {', '.join(rows)}) AS t({names})"


@dataclass(frozen=True)
class WarehouseBuild:
    """Outcome of :func:`build_warehouse`: the published file and its views (tables that had
    files, and those that were empty)."""

    path: Path
    views: tuple[str, ...]
    empty_views: tuple[str, ...]


def build_warehouse(paths: Paths) -> WarehouseBuild:
    """Write a new ``warehouse.duckdb`` for ``paths`` and publish it atomically; return what it
    holds. Safe while analysts hold the old file open (read-only) in other processes."""
    target = warehouse_path(paths)
    target.parent.mkdir(parents=True, exist_ok=True)
    publish_root(paths)  # an object root: the tables go up first, the views bind to them
    sweep_stale_temporaries(target.parent)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    empty = []
    try:
        con = duckdb.connect(str(tmp), config={"autoinstall_known_extensions": False})
        try:
            register_object_store(con, paths)
            for table in TABLES.values():
                statement = view_sql(table, paths.tables, paths.location("tables"))
                if "WHERE false" in statement:
                    empty.append(table.name)
                con.sql(statement)
            con.sql(tables_view_sql())
            con.sql("CHECKPOINT")
        finally:
            con.close()
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return WarehouseBuild(target, tuple(TABLES), tuple(empty))
