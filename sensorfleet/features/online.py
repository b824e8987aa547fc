"""Online lookup: the latest feature values per module, materialized once, read in microseconds.

:func:`materialize_online` runs the training-set query for a spine of every known module at one
instant (label time = as_of = the materialization time, so TTLs count back from it) and writes
``<root>/features/online/latest.parquet`` sorted by ``module_id``. :func:`get_online_features`
loads that file once per process (again when it is replaced), keeps the sorted ids as a numpy
array and answers by binary search (``np.searchsorted``) and an arrow ``take``: no SQL per
lookup, so one module among 1,000,000 costs a few microseconds (benchmarks/bench_features.py).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sensorfleet.config import resolve_paths
from sensorfleet.features.catalog import get_service
from sensorfleet.features.manifest import write_parquet
from sensorfleet.features.model import ENTITY, FeatureService
from sensorfleet.features.retrieval import connect, plan, run
from sensorfleet.features.sources import table_files, table_relation

ONLINE_FILE = "latest.parquet"


def online_path(root: str | Path | None = None) -> Path:
    """``<root>/features/online/latest.parquet``."""
    return resolve_paths(root).root / "features" / "online" / ONLINE_FILE


def materialize_online(root: str | Path | None = None, now: datetime | None = None,
                       service: str | FeatureService | None = None) -> Path:
    """Write the latest value of every feature of ``service`` (default: ``default``, every view)
    for every module seen in its sources, as of ``now`` (default: the current time); return the
    path. Lookups may ask for any service whose features were materialized."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    svc = service if isinstance(service, FeatureService) else get_service(service)
    tables_root = resolve_paths(root).tables
    tables = sorted({t for s in svc.selections for t in s.view.source.tables})
    modules = " UNION ".join(f"SELECT {ENTITY} FROM {table_relation(t, table_files(tables_root, t))}" for t in tables)
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    spine_sql = (f"SELECT {ENTITY}, TIMESTAMPTZ '{stamp}+00' AS label_time, "
                 f"row_number() OVER (ORDER BY {ENTITY}) AS __row FROM ({modules}) WHERE {ENTITY} IS NOT NULL")
    con = connect()
    try:
        table = run(con, plan(spine_sql, svc, moment, root).sql)
    finally:
        con.close()
    table = table.replace_schema_metadata({"sensorfleet.materialized_at": json.dumps(moment.isoformat())})
    path = online_path(root)
    write_parquet(table, path)
    return path


class OnlineStore:
    """The materialized table in memory: the sorted ids and each column as a numpy array with
    its null mask. A lookup touches only numpy and builds one small polars frame: arrow and
    polars kernels wake thread pools, whose wake-up on a loaded machine cost milliseconds at
    the p99 (measured: arrow take + from_arrow p99 4-8 ms at load 5 on 2 cores; numpy 0.01 ms)."""

    def __init__(self, path: Path) -> None:
        table = pq.read_table(path)
        self.path = path
        self.ids = np.asarray(table.column(ENTITY).to_numpy(zero_copy_only=False)).astype(str)
        meta = table.schema.metadata or {}
        self.materialized_at = json.loads(meta.get(b"sensorfleet.materialized_at", b"null"))
        frame = pl.from_arrow(table.slice(0, 0))
        assert isinstance(frame, pl.DataFrame)
        self.schema = frame.schema
        self.columns = {name: _numpy(table.column(name)) for name in table.column_names if "__" in name}

    def lookup(self, module_ids: list[str], columns: list[str]) -> pl.DataFrame:
        """Rows of ``module_ids`` in the order asked; unknown modules get nulls."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise KeyError(f"{self.path}: features {missing} were not materialized; run materialize_online "
                           f"with a service that holds them")
        n = len(self.ids)
        wanted = np.asarray(module_ids, dtype=self.ids.dtype if n else str)
        pos = np.minimum(np.searchsorted(self.ids, wanted), max(n - 1, 0))
        absent = (self.ids[pos] != wanted) if n else np.ones(len(wanted), bool)
        data: dict[str, list[object]] = {ENTITY: list(module_ids)}
        for name in columns:
            values, nulls = self.columns[name]
            hide = (nulls[pos] | absent).tolist() if n else [True] * len(wanted)
            picked = values[pos].tolist() if n else [None] * len(wanted)
            data[name] = [None if h else v for v, h in zip(picked, hide, strict=True)]
        return pl.DataFrame(data, schema={ENTITY: pl.String, **{c: self.schema[c] for c in columns}})


def _numpy(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Values and null mask; integers keep their type (nulls filled with 0, masked)."""
    nulls = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_integer(column.type):
        column = pc.fill_null(column, 0)
    return np.asarray(column.to_numpy(zero_copy_only=False)), nulls


_CACHE: dict[Path, tuple[tuple[int, int], OnlineStore]] = {}
_LOCK = threading.Lock()


def load_online_store(root: str | Path | None = None) -> OnlineStore:
    """The online store of ``root``, loaded once and again only when the file was replaced."""
    path = online_path(root)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no online store; run materialize_online(root) first") from None
    stamp = (stat.st_mtime_ns, stat.st_ino)
    with _LOCK:
        have = _CACHE.get(path)
        if have is None or have[0] != stamp:
            have = (stamp, OnlineStore(path))
            _CACHE[path] = have
        return have[1]


def get_online_features(module_ids: list[str], service: str | FeatureService | None = None,
                        root: str | Path | None = None) -> pl.DataFrame:
    """Latest values of the service's features for ``module_ids`` (one row each, in order)."""
    svc = service if isinstance(service, FeatureService) else get_service(service)
    return load_online_store(root).lookup(list(module_ids), svc.output_columns())
