"""Round trips: simulate modules with known parameters, recover them from the frames."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from scipy import stats

from sensorfleet.synth.params import DefectCounts, ModuleParams
from sensorfleet.synth.physics import build_maps, module_rng, simulate_module
from sensorfleet.synth.plan import build_plan


def _points(params: ModuleParams, seed: int, **plan_kw: float) -> dict[tuple[str, float, float], list[np.ndarray]]:
    plan = build_plan(**plan_kw)  # type: ignore[arg-type]
    points: dict[tuple[str, float, float], list[np.ndarray]] = defaultdict(list)
    for frame, img in simulate_module(params, plan, seed):
        points[(frame.kind, frame.exposure_s, frame.photons_per_pixel)].append(img.astype(np.float64))
    return points


def _pair_stats(frames: list[np.ndarray]) -> tuple[float, float]:
    """EMVA mean and temporal variance (DN, DN^2) from the first two frames of a point."""
    a, b = frames[0], frames[1]
    return float((a.mean() + b.mean()) / 2), float(np.var(a - b) / 2)


@pytest.mark.parametrize("cfa", ["RGGB", "mono"])
def test_photon_transfer_recovers_gain_dark_current_and_read_noise(cfa: str) -> None:
    params = ModuleParams.clean(256, 192, cfa_pattern=cfa, temperature_c=38.0)
    points = _points(params, seed=11, averaging_frames=2)
    ptc_exposure = 0.01
    dark_mean, dark_var = _pair_stats(points[("dark", ptc_exposure, 0.0)])
    sat_dn = params.saturation_dn - params.black_level_dn
    xs, ys = [], []
    for (kind, _exposure, _photons), frames in sorted(points.items()):
        if kind != "flat":
            continue
        mean, var = _pair_stats(frames)
        # 70 % of saturation of the most sensitive channel (the green one), per the brief
        channel_max = (mean - dark_mean) * params.quantum_efficiency_g / params.mean_quantum_efficiency
        if channel_max < 0.7 * sat_dn:
            xs.append(mean - dark_mean)
            ys.append(var - dark_var)
    assert len(xs) >= 5
    gain = np.polyfit(xs, ys, 1)[0]
    assert gain == pytest.approx(params.system_gain_dn_per_e, rel=0.02)

    # dark current: slope of the mean dark signal over exposure time, in electrons via the measured K
    exposures = sorted(e for k, e, _ in points if k == "dark")
    means = [np.mean([f.mean() for f in points[("dark", e, 0.0)]]) for e in exposures]
    dark_current = np.polyfit(exposures, means, 1)[0] / gain
    assert dark_current == pytest.approx(params.dark_current_e_per_s, rel=0.05)

    # read noise: dark temporal variance minus quantization (1/12 DN^2) and dark shot noise
    shot_e = params.dark_current_e_per_s * ptc_exposure
    read_noise = np.sqrt((dark_var - 1 / 12) / gain**2 - shot_e)
    assert read_noise == pytest.approx(params.read_noise_e, rel=0.05)

    # QE per frame: mean signal / (K * photons) below saturation
    (_, _, photons), frames = next((k, v) for k, v in sorted(points.items()) if k[0] == "flat")
    qe = (_pair_stats(frames)[0] - dark_mean) / (gain * photons)
    assert qe == pytest.approx(params.mean_quantum_efficiency, rel=0.03)


def test_small_signals_are_exactly_poisson() -> None:
    """A low-noise module at 1 DN/e-: the dark electrons of a long exposure are Poisson."""
    params = ModuleParams.clean(256, 192, cfa_pattern="mono", system_gain_dn_per_e=1.0, read_noise_e=0.05,
                                dsnu_offset_e=0.0, row_fpn_e=0.0, column_fpn_e=0.0,
                                dark_current_spread_sigma=0.0, dark_current_25c_e_per_s=3.0)
    plan = build_plan(dark_exposures_s=(0.01, 0.1, 0.3, 1.0), averaging_frames=2)
    frame = next(img for f, img in simulate_module(params, plan, 5) if f.kind == "dark" and f.exposure_s == 1.0)
    electrons = frame.astype(np.int64) - int(params.black_level_dn)
    counts = np.bincount(electrons.ravel(), minlength=15)[:15]
    expected = stats.poisson.pmf(np.arange(15), 3.0) * electrons.size
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < stats.chi2.ppf(0.999, 14)


def test_defects_in_frames_match_truth() -> None:
    """Every injected defect shows in the frames, and nothing else does: simple thresholds on the
    frames find exactly the truth (the magnitudes make the classes unambiguous)."""
    spec = DefectCounts(hot=25, warm=25, dead=25, stuck=15, noisy=20, clusters=6, bad_columns=2, bad_rows=1,
                        blemishes=3)
    params = ModuleParams.clean(320, 240, cfa_pattern="RGGB", defects=spec, temperature_c=30.0,
                                shading_corner_rel=0.88)
    plan = build_plan()
    rng, key = module_rng(21)
    maps = build_maps(params, rng, plan.ptc_exposure_s)
    truth: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for d in maps.defects:
        truth[d.defect_class].add((d.x, d.y))
    assert len(truth["blemish"]) == 3 and sum(d.cluster_id is not None for d in maps.defects) >= 12

    n = 0
    acc: dict[str, np.ndarray] = {}
    dark_ref: list[np.ndarray] = []
    lo = hi = None
    for frame, img in simulate_module(params, plan, 21, maps=maps):
        f = img.astype(np.float64)
        lo = f if lo is None else np.minimum(lo, f)
        hi = f if hi is None else np.maximum(hi, f)
        n += 1
        if frame.kind == "dark" and frame.exposure_s == 1.0:
            acc["dark_long"] = acc.get("dark_long", 0) + f / 2
        if frame.kind == "dark" and frame.exposure_s == plan.ptc_exposure_s:
            dark_ref.append(f)
        if frame.series == "averaging_flat":
            acc["flat"] = acc.get("flat", 0) + f / plan.frames.count(frame)
    dark = np.mean(dark_ref, axis=0)
    dark_std = np.std(dark_ref, axis=0, ddof=1)
    k = params.system_gain_dn_per_e
    dark_current = (acc["dark_long"] - dark) / k / (1.0 - plan.ptc_exposure_s)  # e-/s per pixel
    mean_dc = params.dark_current_e_per_s
    found: dict[str, set[tuple[int, int]]] = {}

    def where(mask: np.ndarray) -> set[tuple[int, int]]:
        ys, xs = np.nonzero(mask)
        return {(int(x), int(y)) for x, y in zip(xs, ys, strict=True)}

    assert hi is not None and lo is not None
    stuck = where(hi == lo)
    found["stuck"] = stuck
    not_stuck = hi != lo
    # bad lines: column / row medians of the dark reference far from the rest, or dim in the flat
    signal = acc["flat"] - dark
    col_off = np.median(dark, axis=0) - np.median(dark)
    row_off = np.median(dark, axis=1) - np.median(dark)
    col_resp = np.median(signal, axis=0) / np.median(signal)
    row_resp = np.median(signal, axis=1) / np.median(signal)
    bad_cols = np.flatnonzero((col_off > 10 * k) | (col_resp < 0.8))
    bad_rows = np.flatnonzero((row_off > 10 * k) | (row_resp < 0.8))
    line = np.zeros(dark.shape, dtype=bool)
    line[:, bad_cols] = True
    found["bad_column"] = where(line)
    line_r = np.zeros(dark.shape, dtype=bool)
    line_r[bad_rows, :] = True
    found["bad_row"] = where(line_r)
    point = not_stuck & ~line & ~line_r
    hot = point & (dark_current > 150 * mean_dc)
    found["hot"] = where(hot)
    # random-telegraph pixels: temporal std of the 18 darks at the PTC exposure, > 3x read noise
    noisy = point & ~hot & (dark_std > 3 * params.read_noise_e * k)
    found["noisy"] = where(noisy)
    found["warm"] = where(point & ~hot & ~noisy & (dark_current > 10 * mean_dc))
    # response relative to the 9x9 local median (shading, blemishes and CFA colour removed per colour plane)
    from scipy.ndimage import median_filter

    rel = np.ones_like(signal)
    for oy in (0, 1):
        for ox in (0, 1):
            plane = signal[oy::2, ox::2]
            rel[oy::2, ox::2] = plane / median_filter(plane, size=9, mode="nearest")
    found["dead"] = where(point & (rel < 0.1))
    # cluster members are hot or dead pixels: compare the union of point classes
    for cls in ("hot", "dead"):
        truth_cls = truth[cls]
        assert found[cls] == truth_cls, f"{cls}: missed {truth_cls - found[cls]}, extra {found[cls] - truth_cls}"
    for cls in ("warm", "stuck", "noisy", "bad_column", "bad_row"):
        assert found[cls] == truth[cls], f"{cls}: missed {truth[cls] - found[cls]}, extra {found[cls] - truth[cls]}"
    # blemishes: a dip of the smoothed response at every recorded centre
    from scipy.ndimage import uniform_filter

    smooth = uniform_filter(signal, size=4)  # even: every CFA colour weighs the same / np.median(signal)
    for d in maps.defects:
        if d.defect_class == "blemish":
            r = int(2 * (d.radius_px or 0.0))
            ring = smooth[max(0, d.y - r):d.y + r, max(0, d.x - r):d.x + r]
            assert smooth[d.y, d.x] < np.median(ring) * (1 - 0.5 * d.magnitude)


def test_same_seed_same_frames_and_frames_independent_of_order() -> None:
    params = ModuleParams.clean(48, 32, defects=DefectCounts(hot=2, noisy=2, stuck=1))
    plan = build_plan(averaging_frames=2)
    a = [img for _, img in simulate_module(params, plan, (3, 1))]
    b = [img for _, img in simulate_module(params, plan, (3, 1))]
    c = [img for _, img in simulate_module(params, plan, (3, 2))]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[-1], c[-1])
    # two frames of one operating point differ (temporal noise), their means agree
    assert not np.array_equal(a[0], a[1])


def test_a_bad_row_may_cross_a_bad_column() -> None:
    params = ModuleParams.clean(64, 48, defects=DefectCounts(bad_columns=1, bad_rows=1))
    maps = build_maps(params, module_rng(3)[0])
    columns = {d.x for d in maps.defects if d.defect_class == "bad_column"}
    rows = {d.y for d in maps.defects if d.defect_class == "bad_row"}
    assert len(columns) == 1 and len(rows) == 1
