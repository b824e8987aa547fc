"""Read-only SQL over the warehouse: what ``sensorfleet sql`` runs.

Three guards, each enough for a class of writes: only ``SELECT`` and ``EXPLAIN`` statements are
accepted (no CREATE, INSERT, COPY, ATTACH, EXPORT, INSTALL/LOAD, SET, PRAGMA, CALL); the database
is opened read-only; and the connection may touch no file outside the data root's ``tables/``
folder, with that setting locked.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from sensorfleet.config import Paths
from sensorfleet.staging import register_object_store
from sensorfleet.warehouse.build import build_warehouse, warehouse_path

ALLOWED_STATEMENTS = ("SELECT", "EXPLAIN")


class ReadOnlyQueryError(ValueError):
    """A statement that could change a table or write a file was refused."""


def connect_read_only(paths: Paths) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse of ``paths`` (built first when missing on a local
    root) that can read nothing but the data root's tables (the local folder, or the ``s3://``
    prefix of an object root, read through s3fs) and change no setting."""
    path = warehouse_path(paths)
    if not path.is_file():
        if paths.root_url is not None:
            raise FileNotFoundError(f"no warehouse at {paths.root_url}/{path.name}: run `sensorfleet pipeline run "
                                    f"--root {paths.root_url}` first")
        build_warehouse(paths)
    con = duckdb.connect(str(path), read_only=True, config={
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
    })
    register_object_store(con, paths)
    con.sql(f"SET allowed_directories = ['{paths.location('tables').replace(chr(39), chr(39) * 2)}/']")
    con.sql("SET enable_external_access = false")
    con.sql("SET lock_configuration = true")
    return con


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> Sequence[duckdb.Statement]:
    """The statements of ``sql``; raises ReadOnlyQueryError naming the first one that is not a
    SELECT or EXPLAIN (DuckDB's parser decides, not a text match)."""
    statements = con.extract_statements(sql)
    if not statements:
        raise ReadOnlyQueryError("no SQL statement given")
    for statement in statements:
        kind = str(statement.type).rsplit(".", 1)[-1]
        if kind not in ALLOWED_STATEMENTS:
            raise ReadOnlyQueryError(
                f"{kind} statements are not allowed: the warehouse is read-only "
                f"(allowed: {', '.join(ALLOWED_STATEMENTS)}); refused: {statement.query.strip()[:120]!r}"
            )
    return statements


def run_query(paths: Paths, sql: str) -> pl.DataFrame:
    """Result of the last statement of ``sql`` (read-only, see module doc) as a polars frame.

    Raises ReadOnlyQueryError for a refused statement and ``duckdb.Error`` with DuckDB's own
    message for a bad query.
    """
    con = connect_read_only(paths)
    try:
        statements = check_read_only(con, sql)
        result: pl.DataFrame = pl.DataFrame()
        for statement in statements:
            result = con.sql(statement.query).pl()
        return result
    finally:
        con.close()
