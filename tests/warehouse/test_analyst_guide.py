"""Every query of docs/analyst-guide.md runs against a small fleet taken through the pipeline's
core steps (synth -> ingest -> characterize -> final test -> warehouse) and answers sensibly."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from sensorfleet.config import Paths
from sensorfleet.emva import characterize_day
from sensorfleet.ingest import ingest_day
from sensorfleet.labels import ingest_final_test
from sensorfleet.synth.fleet import FleetConfig
from sensorfleet.synth.writer import generate_fleet
from sensorfleet.warehouse import build_warehouse, run_query

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "analyst-guide.md"


def guide_queries() -> dict[str, str]:
    """``-- name: X`` -> SQL of every sql block of the analyst guide."""
    blocks = re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return {re.match(r"-- name: (\w+)", b).group(1): b for b in blocks}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    base = tmp_path_factory.mktemp("guide")
    paths = Paths(root=base / "data", landing=base / "landing")
    config = FleetConfig(modules=6, seed=3, width=96, height=64, span_days=1.5, stations=2, target_yield=0.5,
                         workers=1, start=datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    generate_fleet(config, paths.landing, base / "truth")
    sessions = sorted(p for p in paths.landing.iterdir() if p.name.startswith("CM-"))
    broken = paths.landing / f"{sessions[0].name}-broken"
    shutil.copytree(sessions[0], broken)
    frame = sorted(broken.glob("frame_*"))[-1]
    frame.write_bytes(frame.read_bytes()[:-100])
    days = sorted({p.name.split("-")[-1][:8] for p in sessions})
    for compact in days:
        day = f"{compact[:4]}-{compact[4:6]}-{compact[6:]}"
        ingest_day(paths, day, workers=1)
        characterize_day(paths, day, workers=1)
    ingest_final_test(paths)
    build_warehouse(paths)
    return paths


def test_the_guide_has_the_six_questions() -> None:
    assert list(guide_queries()) == [
        "yield_by_lot_and_week", "defect_density_by_die_radius", "dark_current_drift_by_station",
        "worst_modules_per_metric", "rejections_by_reason", "failed_modules_against_limits",
    ]


def test_every_guide_query_answers(fleet: Paths) -> None:
    answers = {name: run_query(fleet, sql) for name, sql in guide_queries().items()}
    for name, frame in answers.items():
        assert frame.height > 0, name
    yields = answers["yield_by_lot_and_week"]
    assert yields["modules"].sum() == 6 and 0 < yields["first_pass_yield"].mean() < 1  # type: ignore[operator]
    assert answers["defect_density_by_die_radius"]["defect_pixels_per_mpx"].min() >= 0  # type: ignore[operator]
    drift = answers["dark_current_drift_by_station"]
    assert drift["sessions"].sum() == 6 and drift["station_id"].n_unique() == 2
    first_days = drift.group_by("station_id").agg(pl.col("drift_since_first_day_e_per_s").first())
    assert first_days["drift_since_first_day_e_per_s"].to_list() == [0.0, 0.0]  # drift counts from day one
    worst = answers["worst_modules_per_metric"]
    assert set(worst["metric"]) == {"dark_current_e_per_s", "read_noise_e", "dsnu_e", "prnu_pct", "defect_pixels_total"}
    reasons = answers["rejections_by_reason"]
    assert reasons.filter(pl.col("source") == "landing")["rejections"].sum() >= 1  # the broken copy
    failed = answers["failed_modules_against_limits"]
    assert failed.height == 3 and failed["session_id"].null_count() == 0  # every failure has its metrics
