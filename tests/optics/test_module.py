"""Per-module figures: centre and corner MTF50, uniformity and tilt from a rendered chart whose
PSF varies over the field; relative illumination and colour shading from a known flat."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sensorfleet.emva.flatblocks import add_block_sums, block_counts, from_attr, to_attr
from sensorfleet.optics.chart import analyse_chart
from sensorfleet.optics.module import module_sharpness
from sensorfleet.optics.render import ChartLayout, chart_transmission, true_mtf50
from sensorfleet.optics.shading import channel_planes, flat_block_means, shading, shading_of_blocks

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


@pytest.mark.parametrize(("cfa", "height", "width"), [("RGGB", 48, 64), ("GBRG", 51, 77), ("mono", 37, 50)])
def test_flat_block_means_from_frame_sums_are_the_blocks_of_the_mean_flat(cfa: str, height: int, width: int) -> None:
    rng = np.random.default_rng(3)
    flats = rng.integers(1500, 4095, (4, height, width), dtype=np.uint16)
    darks = rng.integers(60, 70, (3, height, width), dtype=np.uint16)
    signal = flats.astype(np.float64).mean(axis=0) - darks.astype(np.float64).mean(axis=0)
    expected = {name: _reference_blocks(plane, 8) for name, plane in channel_planes(signal, cfa).items()}
    got = flat_block_means(flats.sum(axis=0, dtype=np.uint32), 4, darks.sum(axis=0, dtype=np.uint32), 3, cfa, 8)
    assert set(got) == set(expected)
    for name, blocks in expected.items():
        np.testing.assert_allclose(got[name], blocks, rtol=1e-12)
    a, b = shading(signal, cfa, 8), shading_of_blocks(got)
    assert a.relative_illumination == pytest.approx(b.relative_illumination, rel=1e-12)
    assert np.allclose([a.colour_shading_r_pct, a.colour_shading_b_pct], [b.colour_shading_r_pct, b.colour_shading_b_pct],
                       rtol=1e-10, equal_nan=True)


def _reference_blocks(plane: np.ndarray, grid: int) -> np.ndarray:
    """Block means by an explicit loop over the blocks (``linspace`` edges, as the docstring says)."""
    ys = np.linspace(0, plane.shape[0], grid + 1).astype(int)
    xs = np.linspace(0, plane.shape[1], grid + 1).astype(int)
    return np.array([[plane[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean() for j in range(grid)] for i in range(grid)])


@pytest.mark.parametrize(("mono", "height", "width"), [(False, 51, 77), (True, 37, 50)])
def test_block_sums_band_by_band_equal_the_whole_image(mono: bool, height: int, width: int) -> None:
    """The characterization adds its mean maps band by band: any band split gives the same sums,
    each the plain sum of its block's samples of each CFA site's plane."""
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 4000, (height, width)).astype(np.float32)
    whole = np.zeros((1 if mono else 4, 8, 8))
    add_block_sums(image, 0, height, width, mono, whole)
    for rows in (1, 6, 13):
        banded = np.zeros_like(whole)
        for y0 in range(0, height, rows):
            add_block_sums(image[y0:y0 + rows], y0, height, width, mono, banded)
        np.testing.assert_array_equal(banded, whole)
    offsets = [(0, 0)] if mono else [(0, 0), (0, 1), (1, 0), (1, 1)]
    step = 1 if mono else 2
    for s, (oy, ox) in enumerate(offsets):
        plane = image.astype(np.float64)[oy::step, ox::step][: height // step, : width // step]
        np.testing.assert_allclose(whole[s] / block_counts(height, width, mono, 8), _reference_blocks(plane, 8),
                                   rtol=1e-12)


def test_flat_blocks_attribute_round_trips_with_empty_blocks_as_nan() -> None:
    means = np.arange(4 * 16 * 16, dtype=np.float64).reshape(4, 16, 16) / 7
    means[1, 2, 3] = np.nan
    attr = to_attr(means, [5, 6], [1, 2])
    assert attr["flat_frames"] == [5, 6] and attr["shape"] == [4, 16, 16]
    back = from_attr(json.loads(json.dumps(attr, allow_nan=False)))
    assert back is not None
    np.testing.assert_array_equal(back, means)  # bit for bit, NaN included
    assert from_attr(attr | {"shape": [4, 16, 8]}) is None and from_attr(attr | {"means_f64le_base64": "x!"}) is None
    assert from_attr(None) is None
