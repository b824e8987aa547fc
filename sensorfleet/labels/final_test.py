"""Final-test results -> the ``final_test`` table (partitioned by test day) and ``rejections``.

Input: parquet or CSV files under ``<landing>/final_test/`` with ``module_id``, ``tested_at``
(ISO 8601 with a zone, or a zoned timestamp), ``passed`` (true/false), ``fail_bin`` (optional),
``station_id`` (optional); other columns are ignored. Files are read only when new or changed
(size, mtime or inode differ from the cache in ``state/final_test/``); the table is rebuilt from
every file's parsed rows, so a removed file's rows leave the table, and a day whose rows are
unchanged is not rewritten.

A row is rejected, with its file and 1-based row number, when a value has the wrong type or is
missing, when the module was never captured (unknown module), when the same module and
``tested_at`` appear again (the first occurrence, by file name then row, is kept), or when
``tested_at`` is before the module's first capture. The good rows go on.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from sensorfleet.config import Paths
from sensorfleet.registry import FINAL_TEST, REJECTIONS
from sensorfleet.tables import (
    list_partitions,
    partition_path,
    publish_partition,
    read_table,
    write_atomic,
)

FINAL_TEST_DIR = "final_test"
SUFFIXES = (".parquet", ".csv")
REJECTION_PART = "final_test"
"""Part name of the final-test rows in a ``rejections`` partition (sessions write ``part-0``)."""
_ZONED = r"(?:Z|[+-]\d{2}:?\d{2})$"
_TRUE = ("true", "1", "yes", "pass", "passed")
_FALSE = ("false", "0", "no", "fail", "failed")
_PARSED = pl.Schema([("module_id", pl.String()), ("tested_at", pl.Datetime("us", "UTC")), ("passed", pl.Boolean()),
                     ("fail_bin", pl.String()), ("station_id", pl.String()), ("source_file", pl.String()),
                     ("source_row", pl.Int64()), ("problem", pl.String())])


@dataclass(frozen=True)
class FinalTestReport:
    """What :func:`ingest_final_test` did: files read (new or changed) and reused, good rows,
    rejected rows, and the days of the table whose file was (re)written."""

    files_read: tuple[str, ...]
    files_reused: tuple[str, ...]
    rows: int
    rejected: int
    days_written: tuple[str, ...]


def _as_text(df: pl.DataFrame, column: str) -> pl.Expr:
    if column not in df.columns:
        return pl.lit(None, dtype=pl.String)
    dtype = df.schema[column]
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return pl.col(column).dt.strftime("%Y-%m-%dT%H:%M:%S%.f")  # no zone: rejected below
        return pl.col(column).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.f+00:00")
    return pl.col(column).cast(pl.String)


def read_final_test_file(path: Path) -> pl.DataFrame:
    """Parse one final-test file into typed rows with ``source_file``, ``source_row`` and a
    ``problem`` (null for a good row, else what is wrong with which field). Raises ValueError
    naming the file when it cannot be read as a table at all or lacks a required column."""
    try:
        raw = pl.read_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.read_parquet(path)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as {path.suffix[1:]}: {exc}") from exc
    missing = [c for c in ("module_id", "tested_at", "passed") if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing required column(s) {missing}; found {raw.columns}")
    text = raw.select(
        module_id=_as_text(raw, "module_id").str.strip_chars(),
        tested_at=_as_text(raw, "tested_at").str.strip_chars(),
        passed=_as_text(raw, "passed").str.strip_chars().str.to_lowercase(),
        fail_bin=_as_text(raw, "fail_bin"),
        station_id=_as_text(raw, "station_id"),
    )
    tested = (
        pl.when(pl.col("tested_at").str.contains(_ZONED))
        .then(pl.col("tested_at").str.to_datetime(time_zone="UTC", strict=False, time_unit="us"))
    )
    passed = pl.when(pl.col("passed").is_in(_TRUE)).then(True).when(pl.col("passed").is_in(_FALSE)).then(False)
    parsed = text.with_columns(tested_at_parsed=tested, passed_parsed=passed)
    problem = (
        pl.when(pl.col("module_id").is_null() | (pl.col("module_id") == ""))
        .then(pl.lit("module_id: missing"))
        .when(pl.col("tested_at").is_null())
        .then(pl.lit("tested_at: missing"))
        .when(pl.col("tested_at_parsed").is_null())
        .then(pl.lit("tested_at: expected an ISO 8601 time with a zone (e.g. 2026-03-14T09:30:00+00:00), found ")
              + pl.col("tested_at"))
        .when(pl.col("passed_parsed").is_null())
        .then(pl.lit("passed: expected true or false, found ") + pl.col("passed").fill_null("nothing"))
    )
    return parsed.select(
        "module_id",
        pl.col("tested_at_parsed").alias("tested_at"),
        pl.col("passed_parsed").alias("passed"),
        pl.when(pl.col("passed_parsed")).then(None).otherwise(pl.col("fail_bin")).alias("fail_bin"),
        "station_id",
        pl.lit(path.name).alias("source_file"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("source_row"),
        problem.alias("problem"),
    ).cast(_PARSED)


def file_fingerprint(path: Path) -> str:
    """``size:mtime_ns:inode`` of a label file: what decides whether it is read again (the
    ingest's cache) and whether the sensor requests a refresh."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _parse_cached(path: Path, cache: Path, index: dict[str, str], read: list[str], reused: list[str]) -> pl.DataFrame:
    """Parsed rows of ``path``, from the cache when its fingerprint is unchanged."""
    fingerprint = file_fingerprint(path)
    cached = cache / (hashlib.sha256(path.name.encode()).hexdigest()[:32] + ".parquet")
    if index.get(path.name) == fingerprint and cached.is_file():
        reused.append(path.name)
        return pl.read_parquet(cached)
    try:
        rows = read_final_test_file(path)
    except ValueError as exc:  # the whole file is unreadable: one rejection row names it
        rows = pl.DataFrame([{"source_file": path.name, "source_row": None, "problem": str(exc)}], schema=_PARSED)
    tmp = cache / f".{cached.name}.{uuid.uuid4().hex}.tmp"
    rows.write_parquet(tmp)
    os.replace(tmp, cached)
    index[path.name] = fingerprint
    read.append(path.name)
    return rows


def _first_captures(paths: Paths) -> pl.DataFrame:
    sessions = read_table(paths.tables, "sessions")
    if "module_id" not in sessions.columns:
        return pl.DataFrame(schema={"module_id": pl.String, "first_captured_at": pl.Datetime("us", "UTC")})
    return (sessions.filter(pl.col("status") == "ingested").group_by("module_id")
            .agg(pl.col("captured_at").min().alias("first_captured_at")))


def validate_rows(rows: pl.DataFrame, first_captures: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (all files, in file then row order) with the cross-row problems added: unknown
    module, duplicate (module, tested_at), tested before the module's first capture."""
    joined = rows.with_row_index("__order").join(first_captures, on="module_id", how="left", maintain_order="left")
    duplicate = (pl.col("problem").is_null() & pl.col("tested_at").is_not_null()
                 & (pl.int_range(pl.len()).over(["module_id", "tested_at"], order_by="__order") > 0))
    first = (joined.filter(pl.col("problem").is_null()).group_by(["module_id", "tested_at"])
             .agg(pl.col("source_file").first().alias("first_file"), pl.col("source_row").first().alias("first_row")))
    joined = joined.join(first, on=["module_id", "tested_at"], how="left", maintain_order="left")
    problem = (
        pl.when(pl.col("problem").is_not_null()).then(pl.col("problem"))
        .when(pl.col("first_captured_at").is_null())
        .then(pl.lit("module_id: unknown module ") + pl.col("module_id") + pl.lit(" (no ingested capture session)"))
        .when(pl.col("tested_at") < pl.col("first_captured_at"))
        .then(pl.lit("tested_at: ") + pl.col("tested_at").dt.to_string() + pl.lit(" is before the module's first capture ")
              + pl.col("first_captured_at").dt.to_string())
        .when(duplicate)
        .then(pl.lit("duplicate: module_id and tested_at already given in ") + pl.col("first_file")
              + pl.lit(" row ") + pl.col("first_row").cast(pl.String))
    )
    return joined.with_columns(problem.alias("problem")).sort("__order").drop("__order", "first_file", "first_row")


def _day(ts: pl.Expr) -> pl.Expr:
    return ts.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d")


def _publish_by_day(paths: Paths, table: str, frame: pl.DataFrame, day_column: str, part: str) -> list[str]:
    """Write ``frame`` split by ``day_column`` into ``part`` of each day of ``table``; remove that
    part from days that no longer have rows; return the days whose file was (re)written."""
    written = []
    days = sorted(frame[day_column].unique().to_list()) if frame.height else []
    for day in days:
        rows = frame.filter(pl.col(day_column) == day).drop(day_column)
        if publish_partition(paths.tables, table, day, rows, part).rewritten:
            written.append(day)
    for day in set(list_partitions(paths.tables, table)) - set(days):
        partition_path(paths.tables, table, day, part).unlink(missing_ok=True)
    return written


def final_test_files(landing: Path) -> list[Path]:
    """The label files under ``<landing>/final_test/`` (parquet or CSV, not hidden), by name."""
    folder = landing / FINAL_TEST_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith("."))


def ingest_final_test(paths: Paths, now: datetime | None = None) -> FinalTestReport:
    """Rebuild the ``final_test`` table and the final-test part of ``rejections`` from every file
    under ``<landing>/final_test/`` (nothing in the landing is modified)."""
    now = now or datetime.now(UTC)
    folder = paths.landing / FINAL_TEST_DIR
    cache = paths.state / FINAL_TEST_DIR
    cache.mkdir(parents=True, exist_ok=True)
    index_file = cache / "index.json"
    index: dict[str, str] = json.loads(index_file.read_text()) if index_file.is_file() else {}
    files = final_test_files(paths.landing)
    read: list[str] = []
    reused: list[str] = []
    parsed = [_parse_cached(p, cache, index, read, reused) for p in files]
    index = {name: fp for name, fp in index.items() if name in {p.name for p in files}}
    write_atomic(index_file, json.dumps(index, indent=1, sort_keys=True).encode())

    rows = pl.concat(parsed, how="vertical") if parsed else pl.DataFrame(schema=_PARSED)
    rows = validate_rows(rows, _first_captures(paths))
    good = rows.filter(pl.col("problem").is_null())
    good = good.with_columns(
        attempt=pl.col("tested_at").rank("ordinal").over("module_id").cast(pl.Int64),
        written_at=pl.lit(now, dtype=pl.Datetime("us", "UTC")),
        day=_day(pl.col("tested_at")),
    ).select([*FINAL_TEST.column_names, "day"])
    days_written = _publish_by_day(paths, FINAL_TEST.name, good, "day", "part-0")

    bad = rows.filter(pl.col("problem").is_not_null())
    mtimes = {p.name: datetime.fromtimestamp(p.stat().st_mtime, UTC).strftime("%Y-%m-%d") for p in files}
    rejections = bad.select(
        source=pl.lit("final_test"), session_id=pl.lit(None, pl.String), session_dir=pl.lit(str(folder)),
        file=pl.col("source_file"), row_number=pl.col("source_row"), reason=pl.col("problem"),
        rejected_at=pl.lit(now, dtype=pl.Datetime("us", "UTC")), captured_at=pl.col("tested_at"),
        written_at=pl.lit(now, dtype=pl.Datetime("us", "UTC")),
        day=pl.coalesce(_day(pl.col("tested_at")), pl.col("source_file").replace_strict(mtimes, default=None)),
    ).select([*REJECTIONS.column_names, "day"])
    _publish_by_day(paths, REJECTIONS.name, rejections, "day", REJECTION_PART)
    return FinalTestReport(tuple(read), tuple(reused), good.height, bad.height, tuple(days_written))
