"""Fixtures shared by several test folders."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest


@pytest.fixture(scope="session")
def synth_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic fleet (3 modules, 128x96 RGGB, one capture day 2026-03-02), read only."""
    from sensorfleet.synth.fleet import FleetConfig
    from sensorfleet.synth.writer import generate_fleet

    base = tmp_path_factory.mktemp("synth")
    config = FleetConfig(
        modules=3, seed=1, width=128, height=96, span_days=0.2, workers=1,
        start=datetime(2026, 3, 2, 6, 0, tzinfo=UTC),
    )
    generate_fleet(config, base / "landing", base / "truth")
    return base / "landing"


TableRows = Callable[[str, Iterable[Mapping[str, object]]], pl.DataFrame]


@pytest.fixture(scope="session")
def table_rows() -> TableRows:
    """``table_rows(table, rows)``: a frame of a registered table's schema holding ``rows``
    (every declared column present, null unless given)."""
    from sensorfleet.registry import get_table

    def make(table: str, rows: Iterable[Mapping[str, object]]) -> pl.DataFrame:
        spec = get_table(table)
        return pl.DataFrame([dict.fromkeys(spec.column_names) | dict(r) for r in rows], schema=spec.polars_schema())

    return make
