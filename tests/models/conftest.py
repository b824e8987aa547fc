"""A small synthetic fleet through the core steps, shared by the models tests: 120 modules (lots
of 50, 50, 20: two training lots, one held out), 30 % of them faulty so that every fault class
appears in each lot, 64x48 sensors over 4 days."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.fleet import build_fleet
from sensorfleet.config import Paths
from sensorfleet.synth.fleet import FleetConfig

FLEET = FleetConfig(modules=120, seed=5, width=64, height=48, fault_fraction=0.3, span_days=4.0, stations=2,
                    workers=1, start=datetime(2026, 3, 2, 6, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return build_fleet(tmp_path_factory.mktemp("models-fleet"), FLEET, workers=1)


@pytest.fixture
def root(fleet: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """The shared fleet with a fresh MLflow store of its own (tracking env unset)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return fleet
