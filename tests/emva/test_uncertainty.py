"""Standard uncertainties of the metrics (sensorfleet.emva.uncertainty): the building blocks against
direct computation, the columns in the rows, and the calibration on a synthetic fleet."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from emva_helpers import linear_camera, render_session

from benchmarks.bench_uncertainty import MEAN_BOUND, STD_BOUNDS, fleet_z_scores
from sensorfleet.emva import characterize_frames
from sensorfleet.emva.analysis import analyse
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.emva.mapsgroup import load_session_rows
from sensorfleet.emva.mapstore import MemoryMapStore
from sensorfleet.emva.metrics import analyse_ptc, ptc_points
from sensorfleet.emva.uncertainty import (
    line_weights,
    propagate,
    ptc_u,
    quadratic_mean_u,
    slope_weights,
    spatial_var_u2,
    sqrt_u,
)
from sensorfleet.registry import EMVA_UNCERTAINTIES, MODULE_CHANNEL_STATS, MODULE_STATS
from sensorfleet.registry.emva_tables import UNCERTAIN_METRICS


def test_line_weights_reproduce_the_least_squares_line() -> None:
    t = np.array([0.01, 0.01, 0.1, 0.3, 1.0])
    y = np.array([3.0, 3.1, 4.2, 6.5, 13.9])
    slope, intercept = np.polyfit(t, y, 1)
    assert line_weights(t, 0.0) @ y == pytest.approx(intercept, rel=1e-12)
    assert line_weights(t, 0.5) @ y == pytest.approx(intercept + 0.5 * slope, rel=1e-12)
    assert slope_weights(t) @ y == pytest.approx(slope, rel=1e-12)
    assert line_weights(np.array([0.2, 0.2]), 0.0) @ np.array([1.0, 3.0]) == pytest.approx(2.0)  # one exposure: the mean
    assert not slope_weights(np.array([0.2, 0.2])).any()


def test_propagate_matches_the_analytic_first_order() -> None:
    k, uk, r, ur = 0.4, 0.002, 0.25, 0.0001
    got = propagate(lambda k, r: r / k, {"k": k, "r": r}, {"k": uk, "r": ur})
    assert got == pytest.approx(r / k * math.hypot(uk / k, ur / r), rel=1e-6)
    assert math.isnan(propagate(lambda k, r: r / k, {"k": k, "r": r}, {"k": math.nan, "r": ur}))
    assert sqrt_u(2.0, 0.04) == pytest.approx(0.01)
    assert sqrt_u(0.0, 0.04) == pytest.approx(0.2)  # clamped at 0: the square root of u(v)
    values, u = np.array([1.0, 2.0]), np.array([0.1, 0.1])
    rms = math.sqrt(2.5)
    assert quadratic_mean_u(values, u) == pytest.approx(math.hypot(1.0 * 0.1, 2.0 * 0.1) / (2 * rms))


def test_spatial_variance_u_matches_monte_carlo() -> None:
    """The spread of ``var(<y>) - mean(s^2) / L`` over noise draws of a fixed map."""
    rng = np.random.default_rng(3)
    n, frames, sigma = 4000, 8, 2.0
    pattern = rng.normal(0.0, 0.7, n)
    estimates = []
    for _ in range(400):
        stack = pattern + rng.normal(0.0, sigma, (frames, n))
        estimates.append(stack.mean(axis=0).var(ddof=1) - stack.var(axis=0, ddof=1).mean() / frames)
    predicted = math.sqrt(spatial_var_u2(pattern.var(ddof=1), sigma**2, frames, n))
    assert float(np.std(estimates)) == pytest.approx(predicted, rel=0.12)


def test_every_metric_has_its_uncertainty_column() -> None:
    for table in (MODULE_STATS, MODULE_CHANNEL_STATS):
        names = [c.name for c in table.columns]
        for metric in UNCERTAIN_METRICS:
            assert f"{metric}_u" in names, (table.name, metric)
    units = {c.name: c.unit for c in MODULE_STATS.columns}
    for column in EMVA_UNCERTAINTIES:
        assert column.unit == units[column.name.removesuffix("_u")]
        assert not column.feature


def test_rows_carry_finite_uncertainties() -> None:
    params = linear_camera(96, 80, cfa_pattern="RGGB")
    frames, manifest, _ = render_session(params, seed=4)
    res = characterize_frames(frames, manifest, None)
    for row in [res.module_stats, *res.channel_stats]:
        for metric in UNCERTAIN_METRICS:
            u = row[f"{metric}_u"]
            if metric == "saturation_photons":
                assert u is None or math.isnan(u)  # type: ignore[arg-type]
                continue
            assert math.isfinite(u) and u >= 0, (metric, u)  # type: ignore[arg-type]
        assert 0 < row["gain_k_dn_per_e_u"] < 0.05 * row["gain_k_dn_per_e"]  # type: ignore[operator]


@pytest.mark.slow
def test_uncertainties_are_calibrated_on_a_fleet() -> None:
    """Pooled over module and channel rows of a fleet: z = (measured - realised) / u has a std in
    STD_BOUNDS and a mean within MEAN_BOUND, for every metric the maps define. Full size:
    ``python -m benchmarks.bench_uncertainty`` (docs/metrics.md)."""
    scale = float(os.environ.get("SENSORFLEET_TEST_SCALE", "1"))
    z = fleet_z_scores(modules=max(24, int(32 * scale)), width=320, height=240, seed=5)
    stats = z.group_by("metric").agg(pl.col("z").mean().alias("mean"), pl.col("z").std().alias("std"), pl.len())
    assert stats.height >= 17
    for metric, mean, std, n in stats.iter_rows():
        assert n >= 100, metric
        assert STD_BOUNDS[0] <= std <= STD_BOUNDS[1], (metric, mean, std)
        assert abs(mean) <= MEAN_BOUND, (metric, mean, std)


def test_unknown_uncertainties_stay_null_through_the_maps_group(tmp_path: Path) -> None:
    params = linear_camera(64, 48, cfa_pattern="RGGB")
    frames, manifest, _ = render_session(params, seed=6)
    computed = characterize_frames(frames, manifest, tmp_path / "s.zarr")
    stored = load_session_rows(tmp_path / "s.zarr")
    for before, after in zip([computed.module_stats, *computed.channel_stats],
                             [stored.module_stats, *stored.channel_stats], strict=True):
        assert before["saturation_photons_u"] is None and after["saturation_photons_u"] is None
        assert after["gain_k_dn_per_e_u"] == before["gain_k_dn_per_e_u"]


def test_gain_u_grows_with_the_fit_residuals() -> None:
    """Points scattered well beyond their modelled noise scale u(K) by the Birge ratio."""
    params = linear_camera(96, 80)
    frames, manifest, _ = render_session(params, seed=8)
    result = analyse(frames, manifest, CharacterizationConfig(), MemoryMapStore(80, 96)).result
    points = ptc_points(result, [0, 1, 2, 3])
    ptc = analyse_ptc(points, CharacterizationConfig())
    clean = ptc_u(points, ptc)
    wobble = 1.0 + 0.05 * np.where(np.arange(points.flat_var_dn2.size) % 2, 1.0, -1.0)
    noisy_points = replace(points, flat_var_dn2=points.flat_var_dn2 * wobble)
    noisy_ptc = analyse_ptc(noisy_points, CharacterizationConfig())
    noisy = ptc_u(noisy_points, noisy_ptc)
    assert clean.birge_ratio < 3.0
    assert noisy.birge_ratio > 5.0
    assert noisy.gain > 3.0 * clean.gain
