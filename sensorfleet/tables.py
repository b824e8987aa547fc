"""Parquet tables hive-partitioned by day, written atomically, conformed to the registry.

Layout: ``<tables_root>/<table>/<partition_column>=<YYYY-MM-DD>/<part>.parquet``; the partition
column is the registry's (``capture_date`` for capture data, ``test_date`` for final tests). A
(table, day, part) file is always rewritten whole, so re-running a day replaces its rows exactly;
a day may hold more than one part when two writers feed one table (``rejections``: sessions in
``part-0``, final-test rows in ``final_test``). Writes go to a temporary file in the partition
folder and are published with ``os.replace``, so a reader sees the old file or the new one, never
half a file.

A registered table's rows are conformed to the registry (columns, order, types; field
descriptions in the parquet metadata), and the second time axis is kept true: a row whose content
(every column but ``written_at`` and the table's volatile ones) equals the stored row with the
same key keeps its stored ``written_at``, and a partition whose content is unchanged is not
rewritten at all: known unchanged from the content fingerprint the file carries in its parquet
metadata (:func:`content_fingerprint`) without reading its rows, else by comparing them. See
docs/tables.md for the schemas.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from sensorfleet.registry import TABLES, Table

PARTITION_COLUMN = "capture_date"
"""Partition column of the capture tables (the registry names each table's own)."""
PART = "part-0"
PART_NAME = f"{PART}.parquet"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def _check(table: str, day: str | None = None, part: str = PART) -> None:
    if not _NAME.match(table) or "-" in table:
        raise ValueError(f"table name {table!r}: expected lower_snake_case ([a-z][a-z0-9_]*)")
    if not _NAME.match(part):
        raise ValueError(f"part name {part!r}: expected [a-z][a-z0-9_-]*")
    if day is not None:
        if not _DAY.match(day):
            raise ValueError(f"partition day {day!r}: expected YYYY-MM-DD")
        date.fromisoformat(day)  # raises for 2026-02-30


def partition_column(table: str) -> str:
    """The hive partition column of ``table`` (registry; ``capture_date`` for unregistered ones)."""
    registered = TABLES.get(table)
    return registered.partition_column if registered else PARTITION_COLUMN


def partition_dir(tables_root: Path, table: str, day: str) -> Path:
    """Folder holding ``table``'s files for ``day``."""
    _check(table, day)
    return Path(tables_root) / table / f"{partition_column(table)}={day}"


def partition_path(tables_root: Path, table: str, day: str, part: str = PART) -> Path:
    """Path of the parquet file holding ``part`` of ``table``'s rows for ``day``."""
    _check(table, day, part)
    return partition_dir(tables_root, table, day) / f"{part}.parquet"


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


@dataclass(frozen=True)
class PartitionWrite:
    """Outcome of :func:`publish_partition`: the file, its rows, and whether it was (re)written
    (False: the stored file already held the same content and was left untouched)."""

    path: Path
    rows: int
    rewritten: bool


def content_columns(table: Table) -> list[str]:
    """A row's content: every column of ``table`` but the created time and the volatile ones
    (what an unchanged row keeps from its stored version), in the table's order."""
    versioned = {table.created_time, *table.volatile}
    return [c for c in table.column_names if c not in versioned]


def keep_unchanged_versions(table: Table, new: pl.DataFrame, old: pl.DataFrame) -> pl.DataFrame:
    """``new`` where every row whose key and content equal a row of ``old`` takes that row's
    ``written_at`` and volatile columns: the created time changes only with the content.

    Both frames are conformed to ``table``. Content = every column but the created time and the
    volatile ones; nulls equal nulls and NaN equals NaN.
    """
    if old.is_empty() or new.is_empty():
        return new
    keep = [table.created_time, *table.volatile]
    content = [c for c in content_columns(table) if c not in table.key]
    old_side = old.select([*table.key, *content, *keep]).rename({c: f"{c}__old" for c in [*content, *keep]})
    joined = new.with_row_index("__order").join(
        old_side, on=list(table.key), how="left", nulls_equal=True, maintain_order="left"
    )
    if joined.height != new.height:
        raise ValueError(f"table {table.name!r}: key {list(table.key)} is not unique in the stored partition")
    same = pl.lit(True)
    for c in content:
        same = same & pl.col(c).eq_missing(pl.col(f"{c}__old"))
    same = same & pl.col(f"{table.created_time}__old").is_not_null()
    return joined.with_columns(
        [pl.when(same).then(pl.col(f"{c}__old")).otherwise(pl.col(c)).alias(c) for c in keep]
    ).sort("__order").select(table.column_names)


CONTENT_KEY = b"sensorfleet.content"
"""Parquet key-value metadata of a registered table's partition: :func:`content_fingerprint`."""


def content_fingerprint(table: Table, df: pl.DataFrame) -> bytes:
    """A fingerprint of ``df``'s content (conformed to ``table``; every column but the created
    time and the volatile ones, rows in order): polars' row hashes, digested (128 bits), with the
    polars version, since the row hashes are stable within one version only. Equal fingerprints
    mean equal content (bar a 64-bit collision of a changed row's hash); fingerprints that differ
    (another polars, a file without one) only send :func:`publish_partition` to compare the rows.
    ~0.1 ms for a 1000-row partition, against ~1-2 ms to read and compare the stored rows."""
    hashes = df.select(content_columns(table)).hash_rows().to_numpy()
    digest = hashlib.blake2b(hashes.tobytes(), digest_size=16).hexdigest()
    return f"polars {pl.__version__}; rows {df.height}; {digest}".encode()


def stored_fingerprint(path: Path) -> bytes | None:
    """The :func:`content_fingerprint` stored in the parquet file at ``path`` (its footer only);
    None when it has none or cannot be read."""
    try:
        meta = pq.read_metadata(path).metadata
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return None
    return (meta or {}).get(CONTENT_KEY)


def same_content(table: Table, new: pl.DataFrame, old: pl.DataFrame) -> bool:
    """Whether ``new`` holds ``old``'s rows in ``old``'s order, every column but the created time
    and the volatile ones equal (nulls equal nulls, NaN equals NaN): what a rerun of an unchanged
    day gives. :func:`keep_unchanged_versions` would then give every row its stored values and
    the partition would be left alone; compared row by row here, without its join (a third of
    the cost of republishing an unchanged 1000-row partition). Both frames conformed to ``table``."""
    if new.height != old.height:
        return False
    content = content_columns(table)
    return new.select(content).equals(old.select(content), null_equal=True)


def publish_partition(tables_root: Path, table: str, day: str, df: pl.DataFrame, part: str = PART) -> PartitionWrite:
    """Replace ``part`` of the ``day`` partition of ``table`` with ``df``, atomically, unless the
    stored file already holds the same content.

    ``df`` must not contain the partition column (it is encoded in the path). A registered table
    is conformed to the registry (a column missing or undeclared raises ValueError) and written
    with each field's meaning in the parquet metadata; rows whose content is unchanged keep their
    stored ``written_at`` (:func:`keep_unchanged_versions`). An empty ``df`` still writes a file
    carrying its schema, so the partition reads back as zero rows.
    """
    column = partition_column(table)
    if column in df.columns:
        raise ValueError(f"table {table!r}: column {column!r} is the partition key and lives in the path; drop it")
    target = partition_path(tables_root, table, day, part)
    registered = TABLES.get(table)
    fingerprint = b""
    if registered is not None:
        df = registered.conform(df)
        fingerprint = content_fingerprint(registered, df)
        if target.is_file():
            if stored_fingerprint(target) == fingerprint:  # the stored content, without reading it
                return PartitionWrite(target, df.height, rewritten=False)
            old = registered.conform(read_stored(target))
            if same_content(registered, df, old):
                return PartitionWrite(target, df.height, rewritten=False)
            df = keep_unchanged_versions(registered, df, old)
            if df.equals(old, null_equal=True):
                return PartitionWrite(target, df.height, rewritten=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temporaries(target.parent)
    buffer = io.BytesIO()  # encoded in memory, so a failed write raises the OS error (ENOSPC) with its path
    if registered is not None:
        arrow = df.to_arrow().cast(registered.arrow_schema())
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), CONTENT_KEY: fingerprint})
        pq.write_table(arrow, buffer, compression="zstd", write_statistics=True)
    else:
        df.write_parquet(buffer, compression="zstd", statistics=True)
    write_atomic(target, buffer.getbuffer())
    return PartitionWrite(target, df.height, rewritten=True)


def write_atomic(path: Path, data: bytes | memoryview) -> None:
    """Publish ``data`` as the file ``path``: written to a hidden ``.<name>.<uuid hex>.tmp``
    beside it (the name :func:`sweep_stale_temporaries` clears after a killed writer), then
    moved over it with ``os.replace``, so a reader sees the old file or the new one, never a
    part. The folder is created; a failed write leaves no temporary and raises the OSError
    naming the file; the new file has the umask's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        _write_file(tmp, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_file(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to a new file at ``path``; an OSError names ``path``."""
    try:
        with open(path, "xb") as f:
            f.write(data)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def drop_rows(tables_root: Path, table: str, day: str, column: str, value: str) -> int:
    """Remove the rows whose ``column`` equals ``value`` from every part of ``table``'s ``day``
    partition (each part republished atomically); returns the number of rows removed."""
    folder = partition_dir(tables_root, table, day)
    removed = 0
    for file in sorted(folder.glob("[!.]*.parquet")) if folder.is_dir() else []:
        df = pl.read_parquet(file)
        if column not in df.columns:
            continue
        kept = df.filter(pl.col(column).ne_missing(pl.lit(value)))
        if kept.height < df.height:
            publish_partition(tables_root, table, day, kept, part=file.stem)
            removed += df.height - kept.height
    return removed


def write_partition(tables_root: Path, table: str, day: str, df: pl.DataFrame, part: str = PART) -> Path:
    """:func:`publish_partition`, returning the file path only."""
    return publish_partition(tables_root, table, day, df, part).path


def _with_day(df: pl.DataFrame, table: str, day: str) -> pl.DataFrame:
    return df.with_columns(pl.lit(date.fromisoformat(day), dtype=pl.Date).alias(partition_column(table)))


class UnreadablePartition(ValueError):
    """A stored partition file that cannot be read (truncated, overwritten, not parquet)."""


def read_stored(path: Path) -> pl.DataFrame:
    """The rows of the published parquet file ``path``; :class:`UnreadablePartition` naming the
    file when it cannot be read (nothing is removed or rewritten: a partition is derived data,
    rebuilt by re-running its day once the file is moved aside)."""
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UnreadablePartition(
            f"{path}: cannot read this stored partition ({type(exc).__name__}: {exc}); it is derived data: "
            "move it aside and run its day again to rebuild it (sensorfleet pipeline run --day <day> --force)") from exc


def read_partition(tables_root: Path, table: str, day: str) -> pl.DataFrame:
    """Rows of one day of ``table`` (every part) with the partition column (Date); an empty frame
    if none."""
    folder = partition_dir(tables_root, table, day)
    files = sorted(folder.glob("[!.]*.parquet")) if folder.is_dir() else []
    if not files:
        return pl.DataFrame(schema={partition_column(table): pl.Date})
    frames = [read_stored(f) for f in files]
    return _with_day(pl.concat(frames, how="diagonal_relaxed"), table, day)


def list_partitions(tables_root: Path, table: str) -> list[str]:
    """Days (``YYYY-MM-DD``) that have at least one parquet file for ``table``, sorted."""
    _check(table)
    folder = Path(tables_root) / table
    if not folder.is_dir():
        return []
    days = []
    prefix = f"{partition_column(table)}="
    for entry in folder.iterdir():
        day = entry.name[len(prefix):]
        if entry.name.startswith(prefix) and _DAY.match(day) and any(entry.glob("[!.]*.parquet")):
            days.append(day)
    return sorted(days)


def read_table(tables_root: Path, table: str) -> pl.DataFrame:
    """All partitions of ``table`` concatenated (columns unioned across partitions, missing ones
    null), with the partition column (Date); an empty frame when the table has no partition."""
    parts = [read_partition(tables_root, table, day) for day in list_partitions(tables_root, table)]
    if not parts:
        return pl.DataFrame(schema={partition_column(table): pl.Date})
    return pl.concat(parts, how="diagonal_relaxed")
