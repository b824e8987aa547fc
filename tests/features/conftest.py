"""Small synthetic tables with the registry's schemas, written as the pipeline writes them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from sensorfleet.registry import get_table
from sensorfleet.tables import write_partition

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    """``T0`` plus ``hours``."""
    return T0 + timedelta(hours=hours)


def _default(dtype: str, name: str) -> Any:
    return {"str": f"{name}-x", "i32": 1, "i64": 1, "f64": 1.0, "bool": True}.get(dtype)


def write_rows(root: Path, table: str, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (missing columns filled with defaults) into ``table``'s day partitions,
    one file per day of the event time, replacing those partitions."""
    spec = get_table(table)
    full = [{c.name: r.get(c.name, _default(c.dtype, c.name)) for c in spec.columns} for r in rows]
    df = spec.conform(pl.DataFrame(full, schema=spec.polars_schema(), orient="row"))
    days = df.get_column(spec.event_time).dt.date().cast(pl.String)
    for day in sorted(set(days.to_list())):
        write_partition(root / "tables", table, day, df.filter(days == day))


def session(module: str, captured: float, written: float, sid: str | None = None, **values: Any) -> dict[str, Any]:
    """A module_stats row: ``captured``/``written`` in hours after T0; defaults elsewhere."""
    return {
        "session_id": sid or f"{module}-{captured}", "module_id": module, "lot_id": "L1", "wafer_id": "W1",
        "station_id": "S1", "captured_at": at(captured), "written_at": at(written), "width_px": 1000,
        "height_px": 1000, **values,
    }


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, list[dict[str, Any]]], None]:
    return lambda table, rows: write_rows(tmp_path, table, rows)
