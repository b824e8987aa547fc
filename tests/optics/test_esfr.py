"""e-SFR accuracy against edges rendered with a known Gaussian PSF (true MTF = Gaussian x the
pixel aperture), and the compiled kernel against the plain numpy implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorfleet.optics.esfr import EdgeSfr, edge_sfr
from sensorfleet.optics.esfr_numpy import edge_sfr_numpy
from sensorfleet.optics.render import slanted_edge, true_mtf, true_mtf50

SITES = ((0, 0), (0, 1), (1, 0), (1, 1))


def _edge(length: int, across: int, angle_deg: float, sigma_px: float, vertical: bool) -> np.ndarray:
    """A rendered edge, returned as the ROI the kernel takes (edge along the rows)."""
    if vertical:
        return slanted_edge(length, across, angle_deg, sigma_px, vertical=True)
    return slanted_edge(across, length, angle_deg, sigma_px, vertical=False).T


def _error(result: EdgeSfr, sigma_px: float, angle_deg: float) -> float:
    return result.mtf50() / true_mtf50(sigma_px, math.radians(angle_deg)) - 1.0


@pytest.mark.parametrize("angle_deg", [2.0, 3.5, 5.0, 7.5, 10.0])
@pytest.mark.parametrize("vertical", [True, False])
@pytest.mark.parametrize("sigma_px", [0.6, 1.0, 1.6])
def test_mtf50_within_2_percent_without_noise(angle_deg: float, vertical: bool, sigma_px: float) -> None:
    roi = _edge(192, 64, angle_deg, sigma_px, vertical)
    full = edge_sfr(roi)
    assert full.ok and abs(abs(full.angle_deg) - angle_deg) < 0.01
    assert abs(_error(full, sigma_px, angle_deg)) < 0.02
    for oy, ox in SITES:  # every CFA channel, on its own samples (a plane of step 2)
        plane = edge_sfr(roi[oy::2, ox::2], step=2.0)
        assert abs(_error(plane, sigma_px, angle_deg)) < 0.02, (oy, ox)


def test_whole_curve_follows_the_truth() -> None:
    roi = _edge(192, 64, 5.0, 1.0, True)
    result = edge_sfr(roi)
    f = result.frequency_cy_per_px
    band = f <= 0.5
    truth = true_mtf(f[band], 1.0, math.radians(5.0))
    assert np.max(np.abs(result.mtf[band] - truth)) < 0.01


@pytest.mark.parametrize("angle_deg", [2.0, 5.0, 10.0])
@pytest.mark.parametrize("vertical", [True, False])
def test_mtf50_within_5_percent_at_edge_snr_50(angle_deg: float, vertical: bool) -> None:
    """Edge SNR 50 (contrast / noise rms); luminance ROI 256 rows, each CFA plane 256 of its own
    rows (the same number of samples; each ROI as wide as the edge's slant needs)."""
    rng = np.random.default_rng(int(angle_deg * 10) + vertical)
    sigma = 0.8
    contrast = 0.8
    across = 32 + int(256 * math.tan(math.radians(angle_deg)))  # the ROI holds the whole slanted edge
    for _ in range(4):
        full = _edge(256, across, angle_deg, sigma, vertical) + rng.normal(0, contrast / 50, (256, across))
        result = edge_sfr(full)
        assert 40 < result.snr < 60
        assert abs(_error(result, sigma, angle_deg)) < 0.05
        long = _edge(512, 2 * across, angle_deg, sigma, vertical) + rng.normal(0, contrast / 50, (512, 2 * across))
        for oy, ox in SITES:
            assert abs(_error(edge_sfr(long[oy::2, ox::2], step=2.0), sigma, angle_deg)) < 0.05, (oy, ox)


def test_compiled_kernel_equals_numpy_reference() -> None:
    rng = np.random.default_rng(3)
    for angle, vertical, step in ((3.0, True, 1.0), (8.0, False, 1.0), (5.0, True, 2.0)):
        roi = _edge(128, 40, angle, 1.1, vertical) + rng.normal(0, 0.01, (128, 40))
        a, b = edge_sfr(roi, step), edge_sfr_numpy(roi, step)
        assert a.status == b.status == 0 and a.rows_used == b.rows_used
        np.testing.assert_allclose(a.mtf, b.mtf, rtol=1e-9, atol=1e-12)
        assert a.angle_deg == pytest.approx(b.angle_deg, rel=1e-9)
        assert a.snr == pytest.approx(b.snr, rel=1e-9)


def test_flat_roi_is_not_found_and_short_edge_too_short() -> None:
    assert edge_sfr(np.ones((40, 40))).status == 1
    assert edge_sfr(_edge(12, 40, 5.0, 1.0, True)).status == 2


def test_stuck_and_hot_pixels_are_left_out() -> None:
    rng = np.random.default_rng(9)
    roi = _edge(128, 48, 5.0, 0.9, True) * 3000 + 64 + rng.normal(0, 15, (128, 48))
    clean = edge_sfr(roi).mtf50()
    for y, x, value in ((10, 5, 0.0), (60, 40, 4095.0), (90, 22, 4095.0), (100, 25, 0.0)):
        roi[y, x] = value
    for fn in (edge_sfr, edge_sfr_numpy):
        assert fn(roi).mtf50() == pytest.approx(clean, rel=0.01)


def test_figures_equal_numpy_interpolation_and_the_first_crossing() -> None:
    rng = np.random.default_rng(5)
    for angle, sigma, step in ((2.5, 0.6, 1.0), (6.0, 1.4, 2.0), (9.5, 2.5, 1.0)):
        result = edge_sfr(_edge(96, 48, angle, sigma, True) + rng.normal(0, 0.02, (96, 48)), step)
        f, m = result.frequency_cy_per_px, result.mtf
        below = int(np.flatnonzero(m < 0.5)[0])
        mtf50 = f[below - 1] + (m[below - 1] - 0.5) * (f[below] - f[below - 1]) / (m[below - 1] - m[below])
        expected = (mtf50, float(np.interp(0.125, f, m, right=np.nan)), float(np.interp(0.25, f, m, right=np.nan)))
        assert result.figures((0.125, 0.25)) == expected
        assert (result.mtf50(), result.mtf_at(0.125), result.mtf_at(0.25)) == expected
    assert math.isnan(edge_sfr(_edge(96, 48, 5.0, 1.0, True)).mtf_at(float(f[-1]) + 1.0))
