"""reduce_block against plain numpy: frame sums, pair sums, per-pixel moments and the dark regression.

Integer sums must be exact and the float maps bit-identical to the same formulas evaluated with
numpy on int64 sums, on every path of the kernel: the narrow uint32 path (values < 2**12), the
wide path (any 16-bit value, also when a row switches mid-way), the pixel path (odd width), points
split over several calls (band-level accumulators), and points longer than one uint32 epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

from sensorfleet.emva import kernels


@dataclass(frozen=True)
class Point:
    frames: tuple[int, ...]  # frame indices into the stack
    role: int  # 0 sums only, 1 dark run, 2 spatial dark, 3 spatial flat
    exposure_s: float = 0.0


def _segments(points: list[Point], limit: int) -> list[list[tuple[int, int, int]]]:
    """Calls of at most ``limit`` frames, points in order, a point split at even frame counts
    (the plan of maps.per_pixel_pass)."""
    calls: list[list[tuple[int, int, int]]] = []
    segs: list[tuple[int, int, int]] = []
    used = 0
    for i, p in enumerate(points):
        j = 0
        n = len(p.frames)
        while j < n:
            room = limit - used
            if room < 2 and segs:
                calls.append(segs)
                segs, used = [], 0
                continue
            c = min(n - j, room)
            if j + c < n:
                c -= c % 2
            segs.append((i, j, c))
            used += c
            j += c
    if segs:
        calls.append(segs)
    return calls


def run_reduce(stack: np.ndarray, points: list[Point], band_rows: int, limit: int, in_place: bool) -> dict:
    """Drive kernels.reduce_block over ``stack`` ((n, H, W) uint16) like the per-pixel pass does.

    Returns the maps ((H, W) float32) and per call the kernel's row sums with what they should be.
    """
    n_total, height, width = stack.shape
    dark = [i for i, p in enumerate(points) if p.role in (1, 2)]
    reg = kernels.dark_regression([points[i].exposure_s for i in dark])
    specs = [kernels.PointSpec(len(p.frames), kernels.SegmentRole(p.role), p.exposure_s - reg.exposure_mean_s)
             for p in points]
    maps = {k: np.full((height, width), -1.0, np.float32) for k in ("dm", "dv", "fm", "fv", "off", "cur")}
    checks = []
    for y0 in range(0, height, band_rows):
        y1 = min(height, y0 + band_rows)
        pix_acc = np.zeros((2, y1 - y0, width), np.int64)
        reg_acc = np.zeros((2, y1 - y0, width))
        calls = _segments(points, limit)
        first = calls[0]
        reg_local = {i for i, j, c in first if points[i].role in (1, 2) and j == 0 and c == len(points[i].frames)} == set(dark)
        band = kernels.BandOutputs(*(maps[k][y0:y1] for k in ("dm", "dv", "fm", "fv", "off", "cur")))
        for segs in calls:
            frames = [f for i, j, c in segs for f in points[i].frames[j : j + c]]
            if in_place:
                block, r0, idx = stack, y0, np.array(frames, np.int64)
            else:
                block = np.ascontiguousarray(stack[frames, y0:y1])
                r0, idx = 0, np.arange(len(frames), dtype=np.int64)
            solve = any(i == dark[-1] and j + c == len(points[i].frames) for i, j, c in segs)
            plan = kernels.block_plan(block, r0, idx, segs, specs, reg, band, pix_acc, reg_acc, reg_local, solve)
            assert plan.use_words == (width % 2 == 0)
            plan.row_frame_sums.fill(-7)
            plan.row_pair_sq.fill(-7)
            kernels.reduce_block(plan)
            rfs, rps = plan.row_frame_sums, plan.row_pair_sq
            n_pairs = sum(c // 2 for _i, _j, c in segs)
            rows = stack[frames, y0:y1].astype(np.int64)  # (b, h, W)
            want_rfs = np.stack([rows[:, :, 0::2].sum(2).T, rows[:, :, 1::2].sum(2).T], axis=2)
            pairs = np.concatenate([np.arange(a, a + (c // 2) * 2) for a, (_i, _j, c) in zip(plan.segments.start[:-1], segs, strict=True)]).astype(int)
            d = (rows[pairs[0::2]] - rows[pairs[1::2]]) ** 2
            want_rps = np.stack([d[:, :, 0::2].sum(2).T, d[:, :, 1::2].sum(2).T], axis=2) if n_pairs else rps
            checks.append((rfs, want_rfs, rps, want_rps))
    return {"maps": maps, "checks": checks, "tbar": reg.exposure_mean_s, "stt": reg.exposure_ss_s2,
            "with_slope": reg.with_slope}


def numpy_reference(stack: np.ndarray, points: list[Point], tbar: float, stt: float, with_slope: bool) -> dict:
    """The maps from int64 sums with the kernel's float formulas, evaluated by numpy."""
    height, width = stack.shape[1:]
    out = {k: np.full((height, width), -1.0, np.float32) for k in ("dm", "dv", "fm", "fv", "off", "cur")}
    tm = np.zeros((height, width))
    mm = np.zeros((height, width))
    n_dark = 0
    for p in points:
        if p.role == 0:
            continue
        y = stack[list(p.frames)].astype(np.int64)
        n = len(p.frames)
        s = y.sum(0)
        inv_n = 1.0 / n
        if p.role <= 2:
            m = s * inv_n
            tm += (p.exposure_s - tbar) * m
            mm += m
            n_dark += 1
        if p.role >= 2:
            q = (y * y).sum(0)
            inv_d = 1.0 / (n * (n - 1)) if n > 1 else 0.0
            key = "d" if p.role == 2 else "f"
            out[key + "m"][:] = s * inv_n
            out[key + "v"][:] = (n * q - s * s) * inv_d
    inv_nd = 1.0 / n_dark
    if with_slope:
        slope = tm * (1.0 / stt)
        out["cur"][:] = slope
        out["off"][:] = mm * inv_nd - slope * tbar
    else:
        out["off"][:] = mm * inv_nd
        out["cur"][:] = np.nan
    return out


def session_points(n_ptc: int, n_spatial: int, dark_exposures: tuple[float, ...] = (0.01, 0.1, 0.3, 1.0)) -> list[Point]:
    """Dark runs (2 frames each), PTC pairs, a spatial dark and a spatial flat series, stack order
    shuffled a little (points are not contiguous runs of the stack)."""
    pts: list[Point] = []
    k = 0
    for t in dark_exposures:
        pts.append(Point((k, k + 1), 1, t))
        k += 2
    pts.append(Point(tuple(range(k, k + n_spatial)), 2, dark_exposures[0]))
    k += n_spatial
    for _ in range(n_ptc):
        pts.append(Point((k + 1, k), 0, 0.01))
        k += 2
    pts.append(Point(tuple(range(k, k + n_spatial - 1)) + (1,), 3, 0.01))  # odd length, one frame reused
    return pts


def n_frames(points: list[Point]) -> int:
    return 1 + max(f for p in points for f in p.frames)


def check(stack: np.ndarray, points: list[Point], band_rows: int, limit: int, in_place: bool) -> None:
    got = run_reduce(stack, points, band_rows, limit, in_place)
    for rfs, want_rfs, rps, want_rps in got["checks"]:
        assert np.array_equal(rfs, want_rfs)
        assert np.array_equal(rps, want_rps)
    want = numpy_reference(stack, points, got["tbar"], got["stt"], got["with_slope"])
    for key, arr in want.items():
        assert np.array_equal(got["maps"][key], arr, equal_nan=True), key


@pytest.mark.parametrize("width", [64, 37, 2, 1])
@pytest.mark.parametrize("high", [4095, 65535, 16383])
@pytest.mark.parametrize("limit, in_place", [(10_000, True), (10_000, False), (6, False), (9, True)])
def test_reduce_block_matches_numpy(width: int, high: int, limit: int, in_place: bool) -> None:
    """Narrow (12-bit), wide (16-bit) and 14-bit data, even and odd widths, whole points and points
    split over calls of ``limit`` frames (in place or copied blocks), several bands."""
    pts = session_points(n_ptc=3, n_spatial=9)
    rng = np.random.default_rng(width * 7 + high)
    stack = rng.integers(0, high + 1, size=(n_frames(pts), 11, width), dtype=np.uint16)
    check(stack, pts, band_rows=4, limit=limit, in_place=in_place)


def test_row_switches_to_wide_path() -> None:
    """12-bit data with single large values in some rows (late in the row's frames, early, in the
    odd column): those rows go wide mid-way, the others stay narrow; all exact."""
    pts = session_points(n_ptc=4, n_spatial=12)
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 4096, size=(n_frames(pts), 9, 40), dtype=np.uint16)
    stack[pts[-1].frames[5], 2, 7] = 65535  # spatial flat, odd column
    stack[0, 4, 0] = 4096  # the first dark run
    stack[pts[6].frames[1], 6, 30] = 40000  # a PTC pair
    for limit, in_place in [(10_000, True), (8, False)]:
        check(stack, pts, band_rows=3, limit=limit, in_place=in_place)


@pytest.mark.parametrize("value", [4095, 4096, 16383, 65535])
def test_max_values_are_exact(value: int) -> None:
    """Stacks of the largest value of each path (and one above the narrow path's): rows of more
    than one uint32 chunk of pair squares, more frames per point than 14-bit squares fit in
    uint32, large pair differences: no overflow anywhere."""
    pts = session_points(n_ptc=2, n_spatial=20)
    stack = np.full((n_frames(pts), 3, 2 * kernels.CHUNK_WORDS + 6), value, np.uint16)
    stack[1::2, :, 1::3] = 0
    check(stack, pts, band_rows=3, limit=10_000, in_place=True)


def test_one_dark_exposure_gives_nan_current() -> None:
    pts = [Point((0, 1, 2, 3), 2, 0.5), Point((4, 5, 6), 3, 0.5)]
    stack = np.random.default_rng(5).integers(0, 4096, size=(7, 5, 12), dtype=np.uint16)
    check(stack, pts, band_rows=5, limit=10_000, in_place=True)


@pytest.mark.slow
def test_points_longer_than_an_epoch() -> None:
    """A spatial series of more than EPOCH_FRAMES frames (the uint32 partials are flushed into
    int64 sums between epochs) and a wide sensor row (many uint32 chunks of pair squares).
    SENSORFLEET_TEST_SCALE scales the width."""
    scale = float(os.environ.get("SENSORFLEET_TEST_SCALE", "1"))
    width = max(2, int(600 * scale)) // 2 * 2
    n_sp = kernels.EPOCH_FRAMES + 7
    pts = [Point((0, 1), 1, 0.0), Point(tuple(range(2, 2 + n_sp)), 2, 1.0), Point((2 + n_sp, 3 + n_sp), 0)]
    rng = np.random.default_rng(11)
    stack = rng.integers(0, 4096, size=(n_frames(pts), 3, width), dtype=np.uint16)
    check(stack, pts, band_rows=3, limit=10_000, in_place=True)
    check(stack, pts, band_rows=2, limit=100, in_place=False)
    stack[200, 1, width - 1] = 50000
    check(stack, pts, band_rows=3, limit=10_000, in_place=True)


def test_reference_sums() -> None:
    block = np.random.default_rng(2).integers(0, 65536, size=(5, 7, 9), dtype=np.uint16)
    assert kernels.sum_block_reference(block) == int(block.astype(np.int64).sum())
    for chunks in (1, 2, 7, 400):
        assert kernels.sum_stream_reference(block.reshape(-1), chunks) == int(block.astype(np.int64).sum())


def test_block_plan_segment_arrays() -> None:
    """The plan builder's segment arrays for a call holding the end of one point and the start of
    the next (frames and pairs counted from the call's start), and the regression constants."""
    specs = [kernels.PointSpec(5, kernels.SegmentRole.DARK_RUN, -0.5),
             kernels.PointSpec(6, kernels.SegmentRole.SPATIAL_FLAT, 0.25)]
    reg = kernels.dark_regression([0.1, 0.1])  # one distinct exposure: no slope, stt 1.0
    assert reg == kernels.DarkRegression(0.1, 1.0, 2, False)
    band = kernels.BandOutputs(*(np.zeros((3, 8), np.float32) for _ in range(6)))
    block = np.zeros((7, 3, 8), np.uint16)
    plan = kernels.block_plan(block, 0, np.arange(7, dtype=np.int64), [(0, 2, 3), (1, 0, 4)], specs, reg, band,
                              np.empty((2, 1, 1), np.int64), np.empty((2, 1, 1)), False, True)
    segs = plan.segments
    assert segs.start.tolist() == [0, 3, 7]
    assert segs.pair.tolist() == [0, 1]
    assert segs.role.tolist() == [1, 3]
    assert segs.first.tolist() == [False, True]
    assert segs.last.tolist() == [True, False]
    assert segs.n_frames.tolist() == [5, 6]
    assert segs.weight_s.tolist() == [-0.5, 0.25]
    assert plan.row_frame_sums.shape == (3, 7, 2) and plan.row_pair_sq.shape == (3, 3, 2)
    assert plan.use_words and plan.words.shape == (7, 3, 4)
    assert plan.regression is reg and plan.outputs is band
    args = kernels.kernel_args(plan)  # the kernel's positional order
    assert len(args) == 28 and args[16:20] == (1.0, 2, 0.1, False) and args[20] is band.dark_mean
    odd = kernels.block_plan(block[:, :, :7], 0, np.arange(7, dtype=np.int64), [(0, 0, 5)], specs, reg, band,
                             np.empty((2, 1, 1), np.int64), np.empty((2, 1, 1)), False, True)
    assert not odd.use_words
    assert kernels.dark_regression([0.0, 1.0]) == kernels.DarkRegression(0.5, 0.5, 2, True)


@pytest.mark.parametrize("role", list(kernels.SegmentRole))
def test_each_role_writes_its_outputs(role: kernels.SegmentRole) -> None:
    """One point of each role beside a spatial dark series: only the spatial roles write mean and
    variance maps (their own), and only the dark roles move the dark-current regression."""
    rng = np.random.default_rng(int(role))
    stack = rng.integers(0, 4096, size=(8, 2, 6), dtype=np.uint16)
    pts = [Point((0, 1, 2, 3), 2, 0.0), Point((4, 5, 6, 7), int(role), 1.0)]
    if role == kernels.SegmentRole.SPATIAL_DARK:
        pts[0] = Point((0, 1, 2, 3), 1, 0.0)
    got = run_reduce(stack, pts, band_rows=2, limit=100, in_place=True)["maps"]
    flat_written = role == kernels.SegmentRole.SPATIAL_FLAT
    assert (got["fm"] != -1.0).all() == flat_written and (got["fv"] != -1.0).all() == flat_written
    sloped = role in (kernels.SegmentRole.DARK_RUN, kernels.SegmentRole.SPATIAL_DARK)
    assert np.isfinite(got["cur"]).all() == sloped
    check(stack, pts, band_rows=2, limit=100, in_place=True)
