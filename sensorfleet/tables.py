"""Parquet tables hive-partitioned by capture day, written atomically.

Layout: ``<tables_root>/<table>/capture_date=<YYYY-MM-DD>/part-0.parquet``. One file per
(table, day): a day's partition is always rewritten whole, so re-running a day replaces its rows
exactly. Writes go to a temporary file in the partition folder and are published with
``os.replace``, so a reader sees the old partition or the new one, never half a file.

The partition column ``capture_date`` lives in the path only (hive style); :func:`read_table` and
:func:`read_partition` add it back as a ``pl.Date`` column. See docs/tables.md for the schemas.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from datetime import date
from pathlib import Path

import polars as pl

PARTITION_COLUMN = "capture_date"
PART_NAME = "part-0.parquet"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TABLE = re.compile(r"^[a-z][a-z0-9_]*$")


def _check(table: str, day: str | None = None) -> None:
    if not _TABLE.match(table):
        raise ValueError(f"table name {table!r}: expected lower_snake_case ([a-z][a-z0-9_]*)")
    if day is not None:
        if not _DAY.match(day):
            raise ValueError(f"partition day {day!r}: expected YYYY-MM-DD")
        date.fromisoformat(day)  # raises for 2026-02-30


def partition_path(tables_root: Path, table: str, day: str) -> Path:
    """Path of the one parquet file holding ``table``'s rows for ``day``."""
    _check(table, day)
    return Path(tables_root) / table / f"{PARTITION_COLUMN}={day}" / PART_NAME


STALE_AFTER_S = 3600.0
"""Age (seconds) after which a hidden temporary of an atomic write is taken for a crashed
writer's leftover: writing one partition or one session's maps takes seconds, not an hour."""
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}\.(tmp|old)$")


def sweep_stale_temporaries(folder: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete what killed atomic writers left in ``folder``: hidden ``.<name>.<uuid hex>.tmp``
    or ``.old`` files and folders not modified for ``older_than_s`` seconds; return them.

    Readers already ignore these names, so this only frees disk. Only derived outputs (table
    partitions, maps groups) use this naming, and the next run recomputes anything missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for entry in folder.iterdir():
        if not _TEMPORARY.match(entry.name):
            continue
        try:
            if entry.lstat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def write_partition(tables_root: Path, table: str, day: str, df: pl.DataFrame) -> Path:
    """Replace the ``day`` partition of ``table`` with ``df``, atomically; return the file path.

    ``df`` must not contain the partition column (it is encoded in the path). An empty ``df``
    still writes a file carrying its schema, so the partition reads back as zero rows.
    """
    if PARTITION_COLUMN in df.columns:
        raise ValueError(f"table {table!r}: column {PARTITION_COLUMN!r} is the partition key and lives in the path; drop it")
    target = partition_path(tables_root, table, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temporaries(target.parent)
    tmp = target.parent / f".{PART_NAME}.{uuid.uuid4().hex}.tmp"
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _with_day(df: pl.DataFrame, day: str) -> pl.DataFrame:
    return df.with_columns(pl.lit(date.fromisoformat(day), dtype=pl.Date).alias(PARTITION_COLUMN))


def read_partition(tables_root: Path, table: str, day: str) -> pl.DataFrame:
    """Rows of one day of ``table`` with a ``capture_date`` (Date) column; empty frame if none."""
    path = partition_path(tables_root, table, day)
    if not path.exists():
        return pl.DataFrame(schema={PARTITION_COLUMN: pl.Date})
    return _with_day(pl.read_parquet(path), day)


def list_partitions(tables_root: Path, table: str) -> list[str]:
    """Days (``YYYY-MM-DD``) that have a partition file for ``table``, sorted."""
    _check(table)
    folder = Path(tables_root) / table
    if not folder.is_dir():
        return []
    days = []
    prefix = f"{PARTITION_COLUMN}="
    for entry in folder.iterdir():
        day = entry.name[len(prefix):]
        if entry.name.startswith(prefix) and _DAY.match(day) and (entry / PART_NAME).is_file():
            days.append(day)
    return sorted(days)


def read_table(tables_root: Path, table: str) -> pl.DataFrame:
    """All partitions of ``table`` concatenated (columns unioned across partitions, missing ones
    null), with ``capture_date`` (Date); an empty frame when the table has no partition."""
    parts = [read_partition(tables_root, table, day) for day in list_partitions(tables_root, table)]
    if not parts:
        return pl.DataFrame(schema={PARTITION_COLUMN: pl.Date})
    return pl.concat(parts, how="diagonal_relaxed")
