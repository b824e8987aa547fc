"""The parquet files behind a training set: which files each registry table has now, their
checksums (recorded in a manifest, verified by a rebuild), and the DuckDB relation that reads
exactly those files.

Files are named explicitly rather than by a glob so that the SQL of a training set says which
bytes it read: a partition added later cannot slip into a rebuild.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from sensorfleet.registry import get_table

_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """One parquet file of a table: path, size and SHA-256 of its bytes."""

    table: str
    path: Path
    size_bytes: int
    sha256: str


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def table_files(tables_root: Path, table: str) -> list[Path]:
    """The published parquet files of ``table``: ``<table>/<partition>=<value>/*.parquet``,
    sorted; hidden files (an atomic writer's temporaries) are skipped."""
    folder = Path(tables_root) / table
    column = get_table(table).partition_column
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.glob(f"{column}=*/*.parquet") if not p.name.startswith(".") and p.is_file()
    )


def snapshot(tables_root: Path, tables: list[str]) -> list[SourceFile]:
    """Every file of ``tables`` with its size and checksum, in table then path order."""
    return [
        SourceFile(t, p, p.stat().st_size, sha256_file(p))
        for t in sorted(set(tables)) for p in table_files(tables_root, t)
    ]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_relation(table: str, files: list[Path]) -> str:
    """SQL for a relation over ``files`` of ``table`` (hive partition column included); with no
    file, an empty relation with the registry's columns, so a view over it yields nulls."""
    if not files:
        cols = ", ".join(f"NULL::{c.sql_type} AS {c.name}" for c in get_table(table).columns)
        return f"(SELECT {cols} WHERE false)"
    listed = ", ".join(_quote(str(p)) for p in files)
    # union_by_name lines up the columns of files written under different registry versions; it
    # reads every file's schema while DuckDB binds the query (~25 % of a day's feature query),
    # so it is asked for only when the files' schemas differ
    union = ", union_by_name = true" if len({_schema_of(p) for p in files}) > 1 else ""
    return f"read_parquet([{listed}], hive_partitioning = true{union})"


def _schema_of(path: Path) -> str:
    """The parquet file's arrow schema (names, types, order) as text, remembered per file version."""
    st = path.stat()  # a published file is replaced, never edited: a new inode and mtime
    return _schema_at(str(path), st.st_ino, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=65536)
def _schema_at(path: str, inode: int, mtime_ns: int, size: int) -> str:
    return pq.read_schema(path).remove_metadata().to_string(show_field_metadata=False)


def verify(files: list[SourceFile]) -> list[str]:
    """Problems with recorded files now: missing, or bytes changed; empty when all match."""
    problems = []
    for f in files:
        if not f.path.is_file():
            problems.append(f"{f.path}: missing (table {f.table})")
        elif f.path.stat().st_size != f.size_bytes or sha256_file(f.path) != f.sha256:
            problems.append(f"{f.path}: checksum changed since the manifest was written (table {f.table})")
    return problems
