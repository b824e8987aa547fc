"""Per-module figures: centre and corner MTF50, uniformity and tilt from a rendered chart whose
PSF varies over the field; relative illumination and colour shading from a known flat."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorfleet.optics.chart import analyse_chart
from sensorfleet.optics.module import module_sharpness
from sensorfleet.optics.render import ChartLayout, chart_transmission, true_mtf50
from sensorfleet.optics.shading import shading

H, W = 480, 640


def _tilted(x: float, y: float) -> float:
    """A lens tilted about the anti-diagonal: sharp top-left, soft bottom-right."""
    u = (x - (W - 1) / 2) / (W / 2)
    v = (y - (H - 1) / 2) / (H / 2)
    return 0.9 + 0.35 * (u + v) / 2


def test_centre_corners_and_tilt_follow_the_psf() -> None:
    squares = ChartLayout().squares(W, H, _tilted)
    image = 64 + 3000 * chart_transmission(H, W, squares, 1 / 6).astype(np.float64)
    edges = analyse_chart(image, "mono", 4095)
    result = module_sharpness(edges, W, H)
    assert result.edges_found == 36 and result.edges_ok == 36
    assert result.mtf50_center == pytest.approx(true_mtf50(0.9, math.radians(5)), rel=0.03)
    assert result.corner_mtf50["top_left"] > result.mtf50_center > result.corner_mtf50["bottom_right"]
    assert result.mtf50_corner_min == result.corner_mtf50["bottom_right"]
    # the corner square's edges span sigma 0.9 +- 0.35 * 0.7 * (1 +- ...): compare with its mean sigma
    sigma_br = float(np.mean(squares[8].edge_sigma_px))
    assert result.corner_mtf50["bottom_right"] == pytest.approx(true_mtf50(sigma_br), rel=0.05)
    assert result.tilt_mtf50_diff == pytest.approx(result.corner_mtf50["top_left"] - result.corner_mtf50["bottom_right"])
    assert result.tilt_mtf50_diff > 0.05
    assert 0 < result.field_uniformity < 1


def test_shading_of_a_known_flat() -> None:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    r2 = ((xx - (W - 1) / 2) ** 2 + (yy - (H - 1) / 2) ** 2) / ((W / 2) ** 2 + (H / 2) ** 2)
    fall = 1.0 - 0.2 * r2
    red = 1.0 - 0.1 * r2  # R/G falls by 10 % at the very corner
    flat = 2000.0 * fall
    flat[0::2, 0::2] *= red[0::2, 0::2]
    result = shading(flat, "RGGB")
    assert 0.75 < result.relative_illumination["G"] < 0.85
    assert result.relative_illumination["R"] < result.relative_illumination["G"]
    assert 7.0 < result.colour_shading_r_pct < 10.0  # the corner blocks' mean, not the corner pixel
    assert result.colour_shading_b_pct < 0.1
    mono = shading(flat, "mono")
    assert set(mono.relative_illumination) == {"mono"} and math.isnan(mono.colour_shading_r_pct)
