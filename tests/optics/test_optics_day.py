"""The optics day runner on an ingested synthetic fleet with edge charts: tables, curves, truth."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from sensorfleet.config import Paths
from sensorfleet.ingest import ingest_day
from sensorfleet.optics import characterize_optics_day
from sensorfleet.optics.day import read_curves
from sensorfleet.synth.fleet import FleetConfig
from sensorfleet.synth.writer import generate_fleet
from sensorfleet.tables import read_partition

DAY = "2026-03-02"
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def day_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, pl.DataFrame, object]:
    base = tmp_path_factory.mktemp("optics_day")
    paths = Paths(root=base / "root", landing=base / "landing")
    common = {"start": START, "span_days": 0.2, "workers": 1, "fault_fraction": 0.0, "pixel_format": "npy"}
    generate_fleet(FleetConfig(modules=3, seed=4, edge_charts=True, **common), paths.landing, base / "truth")
    generate_fleet(FleetConfig(modules=1, seed=5, **common), paths.landing, base / "truth")  # no chart
    generate_fleet(FleetConfig(modules=1, seed=6, width=128, height=96, edge_charts=True, **common),
                   paths.landing, base / "truth")  # chart squares too small to find
    ingest_day(paths, DAY, workers=1)
    report = characterize_optics_day(paths, DAY)
    return paths, pl.read_parquet(base / "truth" / "modules.parquet"), report


def test_tables_and_curves_are_written(day_run: tuple) -> None:
    paths, truth, report = day_run
    assert not report.failed and len(report.sessions) == 5
    sfr = read_partition(paths.tables, "sfr", DAY)
    module = read_partition(paths.tables, "module_optics", DAY)
    assert module.height == 5
    charts = truth.filter(pl.col("lens_sigma0_px").is_not_null() & (pl.col("width") == 640))
    for sid in charts["session_id"]:
        rows = sfr.filter(pl.col("session_id") == sid)
        assert rows.height == 36 * 5 and (rows.filter(pl.col("channel") == "L")["quality"] == "ok").sum() >= 34
        curves = read_curves(report.curves[sid])
        assert curves.filter(pl.col("channel") == "L")["edge_id"].n_unique() >= 34
    plain = module.filter(pl.col("chart_frames") == 0)
    assert plain.height == 1 and plain["mtf50_center_cy_per_px"].is_null().all()
    assert plain["relative_illumination_g"].is_not_null().all()
    small = truth.filter(pl.col("width") == 128)["session_id"][0]
    lost = sfr.filter(pl.col("session_id") == small)
    assert lost.height == 1 and lost["quality"][0] == "not_found" and "frame_" in lost["reason"][0]
    assert report.worst_session_id in set(charts["session_id"])


def test_module_optics_against_the_truth(day_run: tuple) -> None:
    paths, truth, _ = day_run
    module = read_partition(paths.tables, "module_optics", DAY).join(truth, on="session_id")
    for row in module.filter(pl.col("chart_frames") > 0, pl.col("width") == 640).iter_rows(named=True):
        assert row["mtf50_center_cy_per_px"] == pytest.approx(row["mtf50_center_true_cy_per_px"], rel=0.05)
        assert row["mtf50_corner_min_cy_per_px"] == pytest.approx(row["mtf50_corner_min_true_cy_per_px"], rel=0.08)
        assert row["colour_shading_r_pct"] == pytest.approx(row["colour_shading_r_true_pct"], abs=0.6)
        assert row["colour_shading_b_pct"] == pytest.approx(row["colour_shading_b_true_pct"], abs=0.6)
        assert row["relative_illumination_g"] == pytest.approx(row["relative_illumination_g_true"], abs=0.01)


def test_a_rerun_keeps_the_rows_and_their_written_at(day_run: tuple) -> None:
    paths, _, _ = day_run
    before = read_partition(paths.tables, "module_optics", DAY)
    characterize_optics_day(paths, DAY)
    after = read_partition(paths.tables, "module_optics", DAY)
    assert after.equals(before)
