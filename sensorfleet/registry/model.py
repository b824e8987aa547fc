"""The shape of the registry: a :class:`Column` declares one column once (type, unit, meaning,
EMVA 1288 symbol and section, physical bounds); a :class:`Table` is an ordered set of columns with
its key, time axes and partitioning. Everything else (parquet schemas with field descriptions,
Dagster column schemas, bounds checks, feature views, docs/tables.md) is derived from these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import polars as pl
import pyarrow as pa

DType = Literal["str", "i32", "i64", "f64", "bool", "ts", "date"]
"""Logical column types: ``ts`` is ``timestamp[us, tz=UTC]``, ``date`` a calendar day."""

_POLARS: dict[str, pl.DataType] = {
    "str": pl.String(), "i32": pl.Int32(), "i64": pl.Int64(), "f64": pl.Float64(),
    "bool": pl.Boolean(), "ts": pl.Datetime("us", "UTC"), "date": pl.Date(),
}
_ARROW: dict[str, pa.DataType] = {
    "str": pa.large_string(), "i32": pa.int32(), "i64": pa.int64(), "f64": pa.float64(),
    "bool": pa.bool_(), "ts": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
}
_SQL: dict[str, str] = {
    "str": "VARCHAR", "i32": "INTEGER", "i64": "BIGINT", "f64": "DOUBLE", "bool": "BOOLEAN",
    "ts": "TIMESTAMP WITH TIME ZONE", "date": "DATE",
}


@dataclass(frozen=True)
class Bound:
    """Physical range of a value: ``low < value < high`` (``<=`` where ``*_inclusive``)."""

    low: float = -math.inf
    high: float = math.inf
    low_inclusive: bool = False
    high_inclusive: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the range (NaN never does)."""
        above = value >= self.low if self.low_inclusive else value > self.low
        below = value <= self.high if self.high_inclusive else value < self.high
        return above and below

    def describe(self) -> str:
        """The range as text, e.g. ``0 <= x < 100``."""
        lo = "" if self.low == -math.inf else f"{self.low:g} {'<=' if self.low_inclusive else '<'} "
        hi = "" if self.high == math.inf else f" {'<=' if self.high_inclusive else '<'} {self.high:g}"
        return f"{lo}x{hi}"


@dataclass(frozen=True)
class Column:
    """One column, declared once.

    ``unit`` is the physical unit (``DN``, ``e-``, ``s``, ``1`` for a dimensionless fraction, ``%``,
    ``dB``...), empty for identifiers and text. ``symbol``/``section`` name the EMVA 1288 Release 4.0
    symbol and section of a metric. ``bound``: the physical range the bounds check enforces
    (finite values only; null is allowed). ``feature``: usable as a model feature.
    """

    name: str
    dtype: DType
    description: str
    unit: str = ""
    symbol: str = ""
    section: str = ""
    bound: Bound | None = None
    feature: bool = False

    @property
    def polars_dtype(self) -> pl.DataType:
        return _POLARS[self.dtype]

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW[self.dtype]

    @property
    def sql_type(self) -> str:
        return _SQL[self.dtype]

    def meaning(self) -> str:
        """Description with unit and EMVA symbol, as stored in parquet field metadata."""
        parts = [self.description]
        if self.unit:
            parts.append(f"[{self.unit}]")
        if self.symbol:
            parts.append(f"(EMVA 1288 {self.symbol}" + (f", {self.section})" if self.section else ")"))
        return " ".join(parts)


@dataclass(frozen=True)
class Table:
    """A parquet table of the data root: ``tables/<name>/<partition>=<value>/<part>.parquet``.

    ``key``: the columns that identify a row (unique within a partition). ``volatile``: columns
    that describe the run that wrote a row rather than its content; a row whose other columns are
    unchanged keeps its old values of these and its old ``written_at``. ``event_time``: the event
    time axis (``captured_at`` for capture data).
    """

    name: str
    description: str
    grain: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    event_time: str = "captured_at"
    created_time: str = "written_at"
    partition_column: str = "capture_date"
    partition_meaning: str = "UTC day of `captured_at`"
    volatile: tuple[str, ...] = ()
    produced_by: str = ""
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"table {self.name!r}: columns declared twice: {dupes}")
        missing = [n for n in (*self.key, *self.volatile, self.created_time) if n not in names]
        if self.event_time and self.event_time not in names:
            missing.append(self.event_time)
        if missing:
            raise ValueError(f"table {self.name!r}: key/time/volatile columns not declared: {missing}")
        if self.partition_column in names:
            raise ValueError(f"table {self.name!r}: the partition column lives in the path, not in the file")
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name``; the error lists the valid names."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"table {self.name!r} has no column {name!r}; columns: {', '.join(self.column_names)}") from None

    def polars_schema(self) -> dict[str, pl.DataType]:
        """Column name -> polars dtype, in declaration order (without the partition column)."""
        return {c.name: c.polars_dtype for c in self.columns}

    def arrow_schema(self) -> pa.Schema:
        """Arrow schema with each field's meaning (``description``, ``unit``, ``symbol``) in its
        metadata, so that any parquet reader sees what a column means."""
        fields = []
        for c in self.columns:
            meta = {"description": c.meaning(), "unit": c.unit}
            if c.symbol:
                meta["emva1288_symbol"] = c.symbol
            fields.append(pa.field(c.name, c.arrow_type, nullable=True, metadata=meta))
        return pa.schema(fields, metadata={"sensorfleet.table": self.name, "sensorfleet.grain": self.grain})

    def empty(self) -> pl.DataFrame:
        """A frame with no rows and this table's schema."""
        return pl.DataFrame(schema=self.polars_schema())

    def conform(self, df: pl.DataFrame) -> pl.DataFrame:
        """``df`` with exactly this table's columns, in order, cast to their declared types.

        Raises ValueError naming the table and the columns that are missing or not declared, so a
        writer cannot drift from the registry unseen. Casts are strict (a value that does not fit
        its type raises instead of turning into null).
        """
        if df.width == 0 and df.height == 0:
            return self.empty()  # a writer with no rows and no inferred columns
        have = set(df.columns)
        missing = [n for n in self.column_names if n not in have]
        extra = sorted(have - set(self.column_names))
        if missing or extra:
            raise ValueError(
                f"table {self.name!r}: rows do not match the registry: "
                f"missing columns {missing}, undeclared columns {extra}"
            )
        return df.select(
            [pl.col(c.name).cast(c.polars_dtype, strict=True) for c in self.columns]
        )

    @property
    def bounds(self) -> dict[str, Bound]:
        """Column name -> physical range, for the columns that declare one."""
        return {c.name: c.bound for c in self.columns if c.bound is not None}

    @property
    def features(self) -> tuple[Column, ...]:
        """The columns declared usable as model features."""
        return tuple(c for c in self.columns if c.feature)
