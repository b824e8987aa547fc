"""Fixtures shared by several test folders."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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
