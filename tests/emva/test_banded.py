"""The banded analysis: any band height gives the single-band answer, defects straddling band
boundaries are found whole, and peak memory does not grow with the sensor height."""

from __future__ import annotations

import math
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from emva_helpers import (
    linear_camera,
    match_blemishes,
    match_defects,
    render_session,
    truth_blemishes,
    truth_count,
    truth_pixels,
)
from scipy import ndimage

from sensorfleet.emva import CharacterizationConfig, characterize_frames, load_maps
from sensorfleet.emva import defects as defects_mod
from sensorfleet.emva.defects import StridedSample, label_sparse, sample
from sensorfleet.manifest import Manifest
from sensorfleet.synth.params import ModuleParams
from sensorfleet.synth.plan import CapturePlan, PlannedFrame
from sensorfleet.synth.session import simulate_session

CLASSES = ["hot", "warm", "dead", "stuck", "noisy", "cluster", "bad_column", "bad_row"]


def _same_stats(a: dict[str, object], b: dict[str, object], rel: float = 1e-9) -> None:
    assert a.keys() == b.keys()
    for key, v in a.items():
        w = b[key]
        if isinstance(v, float):
            if math.isnan(v):
                assert isinstance(w, float) and math.isnan(w), key
            else:
                assert w == pytest.approx(v, rel=rel, abs=1e-12), key
        else:
            assert w == v, key


def _straddles(lo: float, hi: float, rows: int) -> bool:
    """A band boundary (multiple of ``rows``) lies strictly inside rows lo..hi."""
    return math.floor(hi / rows) * rows > lo


@pytest.mark.parametrize("cfa", ["mono", "RGGB"])
def test_banded_equals_single_band(tmp_path: Path, cfa: str) -> None:
    qe = {"quantum_efficiency_r": 0.5, "quantum_efficiency_b": 0.55} if cfa != "mono" else {}
    p = linear_camera(96, 88, cfa_pattern=cfa, **qe)
    frames, manifest, truth = render_session(p, seed=21, ptc_levels=8, spatial_frames=8)
    whole = characterize_frames(frames, manifest, None)  # in-memory store: one band
    one = characterize_frames(frames, manifest, tmp_path / "one.zarr", CharacterizationConfig(map_band_rows=88))
    _same_stats(whole.module_stats, one.module_stats, rel=0.0)
    maps_one = load_maps(tmp_path / "one.zarr")
    for rows in (8, 13):  # bands of 8 rows (pass bands of 8: one chunk each) and of 13 (pass bands staged)
        cfg = CharacterizationConfig(map_band_rows=rows, band_rows=8, min_band_bytes=1)
        res = characterize_frames(frames, manifest, tmp_path / f"b{rows}.zarr", cfg)
        _same_stats(whole.module_stats, res.module_stats)
        for a, b in zip(whole.channel_stats, res.channel_stats, strict=True):
            _same_stats(a, b)
        assert res.defects.equals(whole.defects)
        maps = load_maps(tmp_path / f"b{rows}.zarr")
        assert maps.keys() == maps_one.keys()
        for name, arr in maps_one.items():
            np.testing.assert_array_equal(maps[name], arr, err_msg=name)
    # the defects are right, not only consistent
    scores = match_defects(truth_pixels(truth), whole.defects, ["hot", "dead", "stuck", "cluster", "bad_column"])
    assert all(r >= 0.99 and pr >= 0.99 for r, pr in scores.values()), scores
    assert whole.module_stats["cluster_count"] == truth_count(truth, "cluster")
    assert int(whole.module_stats["blemish_count"]) >= 1  # type: ignore[call-overload]  # the blemish path ran


def test_cluster_and_blemish_straddling_bands_are_found_whole(tmp_path: Path) -> None:
    p = linear_camera(128, 112)
    p = replace(p, defects=replace(p.defects, clusters=6, blemishes=3))
    frames, manifest, truth = render_session(p, seed=8, ptc_levels=8, spatial_frames=8)
    blemishes = truth_blemishes(truth)
    clusters: dict[int, list[int]] = {}
    mask = np.zeros((p.height, p.width), bool)
    for x, y, c in truth_pixels(truth):
        if c == "cluster":
            mask[y, x] = True
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    for k in range(1, n + 1):
        ys = np.nonzero(labels == k)[0]
        clusters[k] = [int(ys.min()), int(ys.max())]
    # a band height that cuts through at least one cluster and one blemish
    rows = next(r for r in range(4, 40) if any(_straddles(lo - 0.5, hi + 0.5, r) for lo, hi in clusters.values() if hi > lo)
                and any(_straddles(by - rad, by + rad, r) for _bx, by, rad in blemishes))
    res = characterize_frames(frames, manifest, tmp_path / "m.zarr", CharacterizationConfig(map_band_rows=rows))
    s = res.module_stats
    assert s["cluster_count"] == truth_count(truth, "cluster") == n
    assert s["largest_cluster_px"] == max(int(np.count_nonzero(labels == k)) for k in clusters)
    assert s["blemish_count"] == len(blemishes) == 3
    scores = match_defects(truth_pixels(truth), res.defects, CLASSES)
    assert all(r >= 0.99 and pr >= 0.99 for r, pr in scores.values()), scores
    recall, precision = match_blemishes(blemishes, res.defects)
    assert recall == 1.0 and precision == 1.0
    whole = characterize_frames(frames, manifest, None)
    assert res.defects.equals(whole.defects)
    _same_stats(whole.module_stats, res.module_stats)


def test_strided_sample_matches_whole_map_sample() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((203, 117)).astype(np.float32)
    a[rng.random(a.shape) < 0.01] = np.nan
    old = defects_mod.SAMPLE
    try:
        defects_mod.SAMPLE = 1000  # strided, not every pixel
        for site in (None, 0, 1, 2, 3):
            plane = a if site is None else a[site // 2 :: 2, site % 2 :: 2]
            ss = StridedSample(203, 117, site, keep_index=True)
            for y0 in range(0, 203, 10):
                ss.add(a[y0 : y0 + 10], y0)
            np.testing.assert_array_equal(ss.values(), sample(plane))
            idx = ss.index()
            np.testing.assert_array_equal(a.reshape(-1)[idx], ss.raw())
    finally:
        defects_mod.SAMPLE = old


def test_sparse_labels_match_ndimage() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((60, 70)) < 0.2
    want, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    lin = np.flatnonzero(mask)
    got, count = label_sparse(lin, 70)
    assert count == n
    np.testing.assert_array_equal(got + 1, want.reshape(-1)[lin])


def _stack(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, Manifest]:
    """A small RGGB session (dark series, a few flat pairs, 4 + 4 spatial frames)."""
    plan = CapturePlan.from_blocks(
        [(PlannedFrame("dark", t, 0.0, "dark_series"), 2) for t in (0.01, 0.1)]
        + [(PlannedFrame("flat", 0.01, ph, "ptc"), 2) for ph in (500.0, 1000.0, 2000.0)]
        + [(PlannedFrame("dark", 0.01, 0.0, "averaging_dark"), 4), (PlannedFrame("flat", 0.01, 1500.0, "averaging_flat"), 4)],
        ptc_exposure_s=0.01)
    frames, manifest, _ = simulate_session(ModuleParams.clean(width, height), plan, seed, f"mem-{height}")
    return frames, manifest


def _peak_bytes(frames: np.ndarray, manifest: Manifest, out: Path | None, cfg: CharacterizationConfig) -> int:
    tracemalloc.start()
    try:
        characterize_frames(frames, manifest, out, cfg)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_height(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tracemalloc peak (numpy and Python allocations) of a 2x taller sensor within 1.3x with the
    maps in the zarr group; the in-memory store, for contrast, grows with the area."""
    monkeypatch.setattr(defects_mod, "SAMPLE", 2048)  # small sensors saturate the samples too
    cfg = CharacterizationConfig(map_band_rows=64, band_rows=64, min_band_bytes=1)
    peaks = {}
    mem = {}
    for h in (512, 1024):
        frames, manifest = _stack(h, 128)
        characterize_frames(frames, manifest, tmp_path / f"warm{h}.zarr", cfg)  # compile, warm caches
        peaks[h] = _peak_bytes(frames, manifest, tmp_path / f"m{h}.zarr", cfg)
        mem[h] = _peak_bytes(frames, manifest, None, cfg)
    assert peaks[1024] <= 1.3 * peaks[512], peaks
    assert mem[1024] >= 1.6 * mem[512], mem
