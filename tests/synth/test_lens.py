"""Fleets with edge charts: the lens (field-varying PSF, colour shading), the chart capture and
its truth, the lens faults and the final test's optics limits; fleets without charts unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sensorfleet.manifest import load_manifest
from sensorfleet.optics.chart import analyse_chart
from sensorfleet.optics.module import module_sharpness
from sensorfleet.rawio import read_frame
from sensorfleet.synth.fleet import FAULT_CLASSES, LENS_FAULT_CLASSES, FleetConfig, plan_fleet
from sensorfleet.synth.lens import psf_sigma_px
from sensorfleet.synth.params import LensParams, ModuleParams
from sensorfleet.synth.writer import SFR_TRUTH, capture_plan_for, generate_fleet

CONFIG = FleetConfig(modules=8, seed=2, edge_charts=True, fault_fraction=1.0, workers=1)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    base = tmp_path_factory.mktemp("lens")
    summary = generate_fleet(CONFIG, base / "landing", base / "truth")
    return summary.landing, summary.truth, summary.session_ids


def test_psf_grows_with_defocus_tilt_and_curvature() -> None:
    params = ModuleParams.clean(640, 480)
    sharp = LensParams(sigma0_px=0.7)
    assert psf_sigma_px(params, sharp, 319.5, 239.5) == pytest.approx(0.7)
    curved = LensParams(sigma0_px=0.7, curvature_px=1.0)
    assert psf_sigma_px(params, curved, -0.5, -0.5) == pytest.approx(math.hypot(0.7, 1.0))  # the corner: field 1
    tilted = LensParams(sigma0_px=0.7, tilt_u_px=1.0)
    assert psf_sigma_px(params, tilted, 0, 240) == pytest.approx(psf_sigma_px(params, tilted, 639, 240), rel=1e-3)
    assert psf_sigma_px(params, LensParams(defocus_px=1.5), 320, 240) > 1.5


def test_lens_faults_fail_in_the_optics_bin(fleet: tuple[Path, Path, list[str]]) -> None:
    _, truth, _ = fleet
    modules = pl.read_parquet(truth / "modules.parquet")
    assert set(modules["fault_class"]) == set(FAULT_CLASSES + LENS_FAULT_CLASSES)
    lens = modules.filter(pl.col("fault_class").is_in(LENS_FAULT_CLASSES))
    assert lens["fail_bin"].to_list() == ["optics", "optics"]
    defocus = modules.filter(pl.col("fault_class") == "defocus")
    assert defocus["mtf50_center_true_cy_per_px"][0] < 0.15
    healthy_ish = modules.filter(~pl.col("fault_class").is_in(LENS_FAULT_CLASSES))
    assert (healthy_ish["mtf50_center_true_cy_per_px"] > 0.19).all()
    assert (modules["colour_shading_r_true_pct"] > 2).all() and (modules["colour_shading_r_true_pct"] < 12).all()


def test_measured_mtf50_matches_the_truth_per_edge(fleet: tuple[Path, Path, list[str]]) -> None:
    landing, truth, sessions = fleet
    edges = pl.read_parquet(truth / SFR_TRUTH)
    modules = pl.read_parquet(truth / "modules.parquet")
    for sid in sessions[:4]:
        m = load_manifest(landing / sid)
        charts = [read_frame(landing / sid / f.file, m.pixel_format, m.sensor.width, m.sensor.height)
                  for f in m.frames if f.kind == "edge_chart"]
        assert len(charts) == CONFIG.chart_frames
        result = analyse_chart(np.mean(charts, axis=0), m.sensor.cfa_pattern, 4095)
        lum = [e for e in result if e.channel == "L" and e.quality == "ok"]
        assert len(lum) >= 34
        mine = edges.filter(pl.col("session_id") == sid)
        errors = []
        for e in lum:
            row = mine.filter((pl.col("square") == e.roi.square) & (pl.col("side") == e.roi.side))
            errors.append(e.mtf50_cy_per_px / row["mtf50_true_cy_per_px"][0] - 1)
        assert abs(float(np.median(errors))) < 0.02 and float(np.percentile(np.abs(errors), 90)) < 0.05
        sharp = module_sharpness(result, m.sensor.width, m.sensor.height)
        t = modules.filter(pl.col("session_id") == sid)
        assert sharp.mtf50_center == pytest.approx(t["mtf50_center_true_cy_per_px"][0], rel=0.05)
        assert sharp.mtf50_corner_min == pytest.approx(t["mtf50_corner_min_true_cy_per_px"][0], rel=0.08)


def test_fleets_without_charts_have_no_lens() -> None:
    config = FleetConfig(modules=30, seed=1)
    assert not config.edge_charts and len(capture_plan_for(config)) == 66
    plans = plan_fleet(config)
    assert all(p.params.lens is None for p in plans)
    assert not {p.fault_class for p in plans} & set(LENS_FAULT_CLASSES)
