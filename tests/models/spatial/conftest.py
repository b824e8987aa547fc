"""A small characterized fleet with one module of each fault class (12 modules, 96 x 64 RGGB,
one capture day), its truth, and a spatial model trained on its fault-free modules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from models.spatial import SpatialModel, TrainingConfig, list_sessions, train_spatial
from sensorfleet.config import Paths
from sensorfleet.emva import characterize_day
from sensorfleet.ingest import ingest_day
from sensorfleet.synth.fleet import FleetConfig
from sensorfleet.synth.writer import generate_fleet

DAY = "2026-03-02"
FAST = TrainingConfig(epochs=60, batch_modules=4)


@dataclass(frozen=True)
class Fleet:
    paths: Paths
    truth_modules: pl.DataFrame
    truth_defects: pl.DataFrame
    sessions: list[str]

    def sessions_where(self, expr: pl.Expr) -> list[str]:
        return self.truth_modules.filter(expr)["session_id"].to_list()


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    base = tmp_path_factory.mktemp("spatial")
    paths = Paths(root=base / "data", landing=base / "landing")
    config = FleetConfig(modules=12, seed=5, width=96, height=64, fault_fraction=0.5, span_days=0.5,
                         stations=2, workers=1, start=datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    generate_fleet(config, paths.landing, base / "truth")
    ingest_day(paths, DAY, workers=1)
    characterize_day(paths, DAY, workers=1)
    return Fleet(paths, pl.read_parquet(base / "truth" / "modules.parquet"),
                 pl.read_parquet(base / "truth" / "defects.parquet"), list_sessions(paths))


@pytest.fixture(scope="session")
def model(fleet: Fleet) -> SpatialModel:
    return train_spatial(fleet.paths, fleet.sessions_where(pl.col("fault_class").is_null()), seed=3, config=FAST)


def maps_group(paths: Paths, session_id: str) -> Path:
    return paths.maps / DAY / f"{session_id}.zarr"
