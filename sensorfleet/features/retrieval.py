"""Point-in-time training sets: a spine (``module_id``, ``label_time`` with zone, any other
columns) in, the same rows in the same order out, with one ``<view>__<feature>`` column per
feature of the service. The SQL is built by :mod:`sensorfleet.features.query`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl
import pyarrow as pa

from sensorfleet.config import resolve_paths
from sensorfleet.features.catalog import get_service
from sensorfleet.features.model import FeatureService
from sensorfleet.features.query import ROW, SPINE_COLUMNS, training_sql
from sensorfleet.features.sources import table_files, table_relation

AsOf = datetime | Literal["label"] | str | None
"""``None``: the build time; a timezone-aware time (or ISO 8601 text with zone); ``"label"``:
each spine row's own label time."""

SPINE_VIEW = "__spine_df"


@dataclass(frozen=True)
class Plan:
    """What a training set reads and runs: the query, its files, and the resolved ``as_of``."""

    service: FeatureService
    as_of: datetime | None  # None: label mode
    files: dict[str, list[Path]]
    sql: str

    @property
    def as_of_mode(self) -> str:
        return "label" if self.as_of is None else "fixed"


def resolve_as_of(as_of: AsOf, now: datetime | None = None) -> datetime | None:
    """The ``as_of`` instant in UTC (``None`` for label mode); ``None`` in means now."""
    if as_of is None:
        return (now or datetime.now(UTC)).astimezone(UTC)
    if isinstance(as_of, str):
        if as_of == "label":
            return None
        try:
            as_of = datetime.fromisoformat(as_of)
        except ValueError:
            raise ValueError(f"as_of {as_of!r}: expected ISO 8601 time with zone or 'label'") from None
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of.isoformat()}: expected a timezone-aware time (e.g. ...+00:00)")
    return as_of.astimezone(UTC)


def resolve_service(service: str | FeatureService | None) -> FeatureService:
    return service if isinstance(service, FeatureService) else get_service(service)


@functools.cache
def _database() -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB database for feature queries (created once: ~12 ms, against
    ~1 ms for a connection to it), with UTC as its zone."""
    database = duckdb.connect()
    database.sql("SET GLOBAL TimeZone = 'UTC'")
    return database


def connect() -> duckdb.DuckDBPyConnection:
    """A new connection to this process's in-memory DuckDB (UTC as its zone, so no result depends
    on the host's zone); it holds no tables: views and registered frames are the connection's
    own, gone when it is closed."""
    con = _database().cursor()
    con.sql("SET TimeZone = 'UTC'")
    return con


def spine_sql_for_file(path: Path) -> str:
    """The spine relation over a parquet file, numbered by its row order in the file."""
    quoted = "'" + str(path).replace("'", "''") + "'"
    return f"SELECT * EXCLUDE (file_row_number), file_row_number AS {ROW} FROM read_parquet({quoted}, file_row_number = true)"


def check_spine(con: duckdb.DuckDBPyConnection, spine_sql: str, service: FeatureService) -> None:
    """Refuse a spine without ``module_id`` / a zoned ``label_time``, or whose columns collide."""
    types = {row[0]: row[1] for row in con.sql(f"DESCRIBE {spine_sql}").fetchall()}
    missing = [c for c in SPINE_COLUMNS if c not in types]
    if missing:
        raise ValueError(f"spine: missing columns {missing}; found {sorted(types)}")
    if types["label_time"] != "TIMESTAMP WITH TIME ZONE":
        raise ValueError(f"spine: label_time must be a timestamp with zone, found {types['label_time']}")
    clash = sorted(set(types) & set(service.output_columns()))
    if clash or "__lk" in types:
        raise ValueError(f"spine: columns {clash or ['__lk']} collide with the training set's own columns")


def plan(spine_sql: str, service: str | FeatureService | None = None, as_of: AsOf = None,
         root: str | Path | None = None, now: datetime | None = None) -> Plan:
    """Resolve the service, ``as_of`` and the current files of every table the service reads."""
    svc = resolve_service(service)
    tables_root = resolve_paths(root).tables
    tables = sorted({t for s in svc.selections for t in s.view.source.tables})
    files = {t: table_files(tables_root, t) for t in tables}
    moment = resolve_as_of(as_of, now)
    relations = {t: table_relation(t, fs) for t, fs in files.items()}
    return Plan(svc, moment, files, training_sql(spine_sql, svc, relations, moment))


def run(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run a training-set query to one arrow table."""
    return con.sql(sql).arrow().read_all()


def get_training_set(spine: pl.DataFrame | str | Path, service: str | FeatureService | None = None,
                     as_of: AsOf = None, root: str | Path | None = None) -> pl.DataFrame:
    """The spine with the service's features, point-in-time correct (see docs/features.md).

    ``spine``: a frame or a parquet file with ``module_id`` (str) and ``label_time`` (timestamp
    with zone); other columns pass through. Every spine row comes back once, in spine order.
    """
    con = connect()
    try:
        if isinstance(spine, pl.DataFrame):
            con.register(SPINE_VIEW, spine.with_row_index(ROW).to_arrow())
            spine_sql = f"SELECT * FROM {SPINE_VIEW}"
        else:
            spine_sql = spine_sql_for_file(Path(spine).resolve())
        the_plan = plan(spine_sql, service, as_of, root)
        check_spine(con, spine_sql, the_plan.service)
        result = pl.from_arrow(run(con, the_plan.sql))
        assert isinstance(result, pl.DataFrame)
        return result
    finally:
        con.close()
