"""Square search, ROIs, channels and quality flags on rendered charts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorfleet.optics.chart import _balance_plane, _order_statistics, analyse_chart, channel_sites
from sensorfleet.optics.detect import block_mean
from sensorfleet.optics.esfr import edge_sfr
from sensorfleet.optics.render import ChartLayout, chart_transmission, true_mtf50

H, W = 480, 640
GAINS = {(0, 0): 0.45, (0, 1): 0.62, (1, 0): 0.62, (1, 1): 0.50}  # RGGB response per site


def _sigma(x: float, y: float) -> float:
    field = math.hypot(x - (W - 1) / 2, y - (H - 1) / 2) / math.hypot(W / 2, H / 2)
    return 0.7 + 0.6 * field


def _chart(cfa: bool = True) -> tuple[np.ndarray, list]:
    squares = ChartLayout().squares(W, H, _sigma)
    trans = chart_transmission(H, W, squares, 0.16).astype(np.float64)
    image = 64 + 3000 * trans
    if cfa:
        for (oy, ox), g in GAINS.items():
            image[oy::2, ox::2] = 64 + 5000 * g * trans[oy::2, ox::2]
    return image, squares


def test_channel_sites_name_the_greens_by_their_row() -> None:
    assert channel_sites("RGGB") == {"R": (0, 0), "Gr": (0, 1), "Gb": (1, 0), "B": (1, 1)}
    assert channel_sites("GBRG") == {"R": (1, 0), "Gr": (1, 1), "Gb": (0, 0), "B": (0, 1)}
    assert channel_sites("mono") == {}


def test_every_edge_found_and_luminance_mtf50_within_2_percent() -> None:
    image, squares = _chart()
    result = analyse_chart(image, "RGGB", 4095)
    assert len(result) == 9 * 4 * 5  # 9 squares, 4 edges, L + R, Gr, Gb, B
    lum = [m for m in result if m.channel == "L"]
    assert all(m.quality == "ok" for m in lum), [(m.roi, m.quality) for m in lum if m.quality != "ok"]
    for m in lum:
        sq = squares[m.roi.square]
        sigma = sq.edge_sigma_px[("top", "right", "bottom", "left").index(m.roi.side)]
        truth = true_mtf50(sigma, math.radians(m.angle_deg))
        assert abs(m.mtf50_cy_per_px / truth - 1) < 0.02, m
        assert abs(abs(m.angle_deg) - sq.rotation_deg) < 0.2
    corner = [m for m in lum if m.roi.square == 0]
    assert all(0.55 < m.field_frac < 0.85 for m in corner)
    assert {m.orientation for m in lum} == {"vertical", "horizontal"}
    assert {m.direction for m in lum} == {"sagittal", "tangential"}


def test_mono_once_per_edge_and_clipped_edges_flagged() -> None:
    image, _ = _chart(cfa=False)
    result = analyse_chart(image, "mono", 4095)
    assert len(result) == 36 and {m.channel for m in result} == {"mono"}
    assert all(m.quality == "ok" for m in result)
    clipped = analyse_chart(np.minimum(image, 2000.0), "mono", 2000)  # the light background at the ADC maximum
    assert all(m.quality == "clipped" and math.isnan(m.mtf50_cy_per_px) for m in clipped)


@pytest.mark.parametrize("cfa", ["RGGB", "GBRG", "mono"])
def test_the_compiled_channels_equal_one_e_sfr_call_per_channel(cfa: str) -> None:
    """With the default e-SFR every channel of an ROI is measured in one compiled call; the
    measurements are those of :func:`edge_sfr` called channel by channel, bit for bit."""
    image, _ = _chart(cfa=cfa != "mono")
    rng = np.random.default_rng(9)
    image = np.round(image + rng.normal(0, 4, image.shape)) / 4  # noise, a mean of 4 frames
    batched = analyse_chart(image, cfa, 4095 / 4)
    one_by_one = analyse_chart(image, cfa, 4095 / 4, sfr_fn=lambda roi, step, config: edge_sfr(roi, step, config))
    assert len(batched) == len(one_by_one) == 36 * (1 if cfa == "mono" else 5)
    for a, b in zip(batched, one_by_one, strict=True):
        assert (a.sfr is None) == (b.sfr is None) and a.quality == b.quality and a.reason == b.reason
        assert np.array_equal([a.angle_deg, a.mtf50_cy_per_px, a.mtf_nyquist4, a.mtf_nyquist2, a.edge_snr],
                              [b.angle_deg, b.mtf50_cy_per_px, b.mtf_nyquist4, b.mtf_nyquist2, b.edge_snr], equal_nan=True)
        if a.sfr is not None and b.sfr is not None:
            assert (a.sfr.status, a.sfr.edge_x, a.sfr.contrast, a.sfr.noise, a.sfr.rows_used) == (
                b.sfr.status, b.sfr.edge_x, b.sfr.contrast, b.sfr.noise, b.sfr.rows_used)
            assert np.array_equal(a.sfr.frequency_cy_per_px, b.sfr.frequency_cy_per_px)
            assert np.array_equal(a.sfr.mtf, b.sfr.mtf)
    assert sum(m.quality == "ok" for m in batched) >= 0.75 * len(batched)  # most edges measured


def test_a_frame_sum_is_analysed_as_its_mean_bit_for_bit() -> None:
    """The day runner passes the integer sum of the chart frames and their count: the square
    search and the ROIs divide as they read, and every measurement equals the mean image's."""
    image, _ = _chart()
    rng = np.random.default_rng(2)
    frames = np.clip(np.round(image + rng.normal(0, 6, (4, H, W))), 0, 4095).astype(np.uint16)
    total = frames.sum(axis=0, dtype=np.uint32)
    for boxes in (None, [(300, 200, 40, 60)]):
        from_sum = analyse_chart(total, "RGGB", 4095, boxes, n_frames=4)
        from_mean = analyse_chart(total / 4, "RGGB", 4095, boxes)
        assert len(from_sum) == len(from_mean) > 0
        for a, b in zip(from_sum, from_mean, strict=True):
            assert a.roi == b.roi and a.quality == b.quality
            assert np.array_equal([a.mtf50_cy_per_px, a.edge_snr, a.angle_deg], [b.mtf50_cy_per_px, b.edge_snr, b.angle_deg],
                                  equal_nan=True)
    for n in (1, 3, 4):  # a power of two multiplies by 1 / n, others divide: the same values
        np.testing.assert_array_equal(block_mean(total, 4, n), block_mean(total / n, 4))


def test_manifest_rois_are_honoured_and_border_rois_flagged() -> None:
    image, _ = _chart(cfa=False)
    found = analyse_chart(image, "mono", 4095)
    centre = [m for m in found if m.roi.square == 4 and m.roi.side == "right"][0].roi
    box = (centre.x0, centre.y0, centre.x1 - centre.x0, centre.y1 - centre.y0)
    result = analyse_chart(image, "mono", 4095, boxes=[box, (0, 0, 30, 60)])
    assert result[0].quality == "ok" and result[0].orientation == "vertical"
    assert result[0].mtf50_cy_per_px == found[[m.roi for m in found].index(centre)].mtf50_cy_per_px
    assert result[1].quality == "near_border" and "border" in result[1].reason


def test_blank_image_has_no_edges() -> None:
    assert analyse_chart(np.full((H, W), 3000.0), "RGGB", 4095) == []


@pytest.mark.parametrize("shape", [(31, 27), (64, 70), (90, 50), (12, 10)])
def test_the_balanced_plane_uses_numpys_percentiles_and_raster_order_means(shape: tuple[int, int]) -> None:
    """The balancing of a strided plane is the reference formula (numpy percentiles, means of the
    dark and light quarters) within rounding, and leaves the other sites alone."""
    rng = np.random.default_rng(sum(shape))
    roi = np.round((rng.normal(size=shape) + 5.0 * (rng.random(shape) > 0.4)) * 40.0) / 7.0
    plane = roi[1::2, ::2]
    values = np.ascontiguousarray(plane).ravel()
    sample = values[::max(1, values.size // 1024)]
    k_lo, k_hi = int(0.02 * (sample.size - 1)), int(0.98 * (sample.size - 1))
    p_lo, p_hi = np.partition(sample, k_lo)[k_lo], np.partition(sample, k_hi)[k_hi]
    span = p_hi - p_lo
    low, high = values[values <= p_lo + 0.25 * span], values[values >= p_hi - 0.25 * span]
    high = high[~(high <= p_lo + 0.25 * span)]
    dark = math.fsum(low) / low.size if low.size else p_lo
    light = math.fsum(high) / high.size if high.size else p_hi
    out = np.zeros_like(roi)
    _balance_plane(plane, out[1::2, ::2])
    np.testing.assert_allclose(out[1::2, ::2], (plane - dark) / (light - dark), rtol=0, atol=1e-12)
    assert not out[::2].any()  # nothing outside the plane written


@pytest.mark.parametrize("stride", [1, 3])
def test_order_statistics_are_numpys_kth_values(stride: int) -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 100, 1025):
        for a in (rng.integers(0, 7, n * stride).astype(np.float64),  # many ties
                  np.sort(rng.normal(size=n * stride))[::-1].copy(),  # every sample a new minimum
                  np.tile(np.r_[np.zeros(5), np.ones(5)] + rng.normal(0, 0.01, 10), n * stride)[:n * stride]):
            plane = a.reshape(-1, stride if n * stride % stride == 0 and stride > 1 else 1)
            sample = a[::stride][:n]
            k_lo, k_hi = int(0.02 * (n - 1)), int(0.98 * (n - 1))
            got = _order_statistics(plane, stride, n, k_lo, k_hi)
            assert got == (np.partition(sample, k_lo)[k_lo], np.partition(sample, k_hi)[k_hi])


@pytest.mark.parametrize("block", [2, 3, 4, 8])
def test_block_mean_is_numpys_tile_mean_to_the_bit(block: int) -> None:
    rng = np.random.default_rng(block)
    for shape in [(97, 131), (480, 640)]:
        image = rng.random(shape) * 1e3
        h, w = shape[0] // block * block, shape[1] // block * block
        expected = image[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))
        assert np.array_equal(block_mean(image, block), expected)


def test_the_components_pass_equals_numpy_per_component() -> None:
    """The square search's one pass over the labels gives each component's size, bounding box
    (``ndimage.find_objects``) and corners (first ``np.argmin`` / ``argmax`` of x + y and x - y over
    its pixels in raster order), ties included."""
    from scipy import ndimage

    from sensorfleet.optics.detect import _components

    rng = np.random.default_rng(11)
    for _ in range(5):
        mask = ndimage.binary_opening(rng.random((60, 80)) < 0.55)
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        sizes, boxes, corners = _components(labels, n)
        assert n > 3
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            ys, xs = np.nonzero(labels == index)
            s, d = xs + ys, xs - ys
            want = [(xs[np.argmin(s)], ys[np.argmin(s)]), (xs[np.argmax(d)], ys[np.argmax(d)]),
                    (xs[np.argmax(s)], ys[np.argmax(s)]), (xs[np.argmin(d)], ys[np.argmin(d)])]
            assert sizes[index - 1] == ys.size
            assert boxes[index - 1].tolist() == [box[0].start, box[1].start, box[0].stop, box[1].stop]
            assert corners[index - 1].tolist() == [list(map(int, c)) for c in want]
