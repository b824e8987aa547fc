"""Defect classification on the per-pixel maps: point defects, clusters, bad lines, blemishes.

Order (later steps see earlier results):
1. point candidates from the maps: stuck > dead > hot > warm > noisy (one class per pixel);
2. bad columns / rows: the line's median deviates from its neighbours (dark signal or response),
   or most of its pixels are point candidates; every pixel of such a line gets the line class;
3. clusters: 8-connected groups of >= ``cluster_min`` point defects (off the bad lines);
4. blemishes on the shading-corrected response with every defect neutralised.

The response map given here is already divided by the lens-shading fit, so "dead" means dark
relative to its neighbourhood's illumination, not to the sensor centre.
See docs/metrics.md for the thresholds and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage

from sensorfleet.emva.config import DEFECT_CODES, DefectThresholds
from sensorfleet.emva.shading import Blemish, find_blemishes

VALUE_UNITS: dict[str, str] = {
    "hot": "DN",  # dark-signal excess at the longest dark exposure
    "warm": "DN",
    "dead": "relative",  # response / channel median
    "stuck": "DN",  # the stuck level (flat average)
    "noisy": "DN",  # temporal dark noise
    "cluster": "px",  # size of the cluster
    "bad_column": "relative",  # see line_values
    "bad_row": "relative",
    "blemish": "relative",  # depth: 1 - smoothed relative response
}


LINE_SAMPLE = 160  # bad-line profiles are medians over every k-th pixel of a line, at least this many
SAMPLE = 1 << 18  # medians of larger maps use an evenly strided sample of at most this many pixels


def sample(values: np.ndarray) -> np.ndarray:
    """The finite values of a map, strided down to at most SAMPLE of them (the median of 262k
    pixels is precise to ~0.25 % of a sigma; a full partition of 12 MP costs ~0.1 s per median)."""
    flat = values.reshape(-1)
    step = max(1, -(-flat.size // SAMPLE))
    v = flat[::step]
    return v[np.isfinite(v)]


def robust_median(values: np.ndarray) -> float:
    v = sample(values)
    return float(np.median(v)) if v.size else float("nan")


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation (a Gaussian's sigma, insensitive to outliers)."""
    v = sample(values)
    if v.size == 0:
        return float("nan")
    med = np.median(v)
    return float(1.4826 * np.median(np.abs(v - med)))


@numba.njit(cache=True, nogil=True, parallel=True)
def _point_classes(dark: np.ndarray, noise: np.ndarray, dc: np.ndarray, response: np.ndarray, flat: np.ndarray,
                   dark_mean: np.ndarray, flat_noise: np.ndarray, use_dc: bool, have_flat: bool,
                   consts: np.ndarray, cls: np.ndarray, val: np.ndarray, codes: np.ndarray) -> None:
    """Step 1 in one pass over the (H, W) float32 maps (no full-size temporaries); float32
    comparisons as numpy does them. ``consts`` (float32): dark_med, noisy threshold, warm
    threshold (DN), warm_min_excess, dc_med, se_per_dn, warm_sigma, warm factor, hot factor, hot
    threshold (DN), dead_response, stuck noise (dark), stuck noise (flat), stuck delta.
    ``codes``: noisy, warm, hot, dead, stuck."""
    h, w = dark.shape
    dark_med, noisy_t, warm_t, warm_min, dc_med, se_per_dn = consts[0], consts[1], consts[2], consts[3], consts[4], consts[5]
    warm_sigma, warm_f, hot_f, hot_t, dead_r = consts[6], consts[7], consts[8], consts[9], consts[10]
    stuck_dn, stuck_fn, stuck_d = consts[11], consts[12], consts[13]
    for y in numba.prange(h):
        for x in range(w):
            c = np.uint8(0)
            v = np.float32(0.0)
            dn = noise[y, x]
            if dn > noisy_t:
                c = codes[0]
                v = dn
            ex = dark[y, x] - dark_med
            sig = (ex > warm_t) and (ex > warm_min)
            if use_dc:
                d = dc[y, x]
                metric = d / dc_med
                sig = sig and ((d - dc_med) > warm_sigma * (dn * se_per_dn))
                warm = sig and metric >= warm_f
                hot = sig and metric >= hot_f
            else:
                metric = ex
                warm = sig
                hot = sig and ex > hot_t
            if warm:
                c = codes[1]
                v = metric
            if hot:
                c = codes[2]
                v = metric
            if have_flat:
                r = response[y, x]
                if r < dead_r:
                    c = codes[3]
                    v = r
                quiet = dn <= stuck_dn and flat_noise[y, x] <= stuck_fn
                fl = flat[y, x]
                if abs(fl - dark_mean[y, x]) < stuck_d and (quiet or hot):
                    c = codes[4]
                    v = fl
            cls[y, x] = c
            val[y, x] = v


@dataclass(frozen=True)
class DefectMaps:
    """Inputs of the classification, all (H, W)."""

    dark_long_dn: np.ndarray  # dark signal at the longest dark exposure (DN)
    dark_current_dn_per_s: np.ndarray  # per-pixel dark current (NaN with one dark exposure)
    dark_current_se_per_dn: float  # standard error of a pixel's dark current per DN of its temporal noise (1/s)
    dark_noise_dn: np.ndarray  # temporal dark noise (DN)
    dark_mean_dn: np.ndarray  # spatial dark average (DN)
    flat_mean_dn: np.ndarray | None  # spatial flat average (DN)
    flat_noise_dn: np.ndarray | None  # temporal noise of the flat series (DN)
    response: np.ndarray | None  # relative response / shading fit (1 = channel median, shading removed)
    site: np.ndarray  # (H, W) uint8 CFA site 0..3 (2 * (y % 2) + x % 2)


@dataclass(frozen=True)
class DefectResult:
    """Class map (uint8 codes of config.DEFECT_CODES), value map, lines, clusters, blemishes."""

    classes: np.ndarray
    values: np.ndarray  # float32, the value that classified each defective pixel
    bad_columns: list[int]
    bad_rows: list[int]
    cluster_count: int
    largest_cluster_px: int
    blemishes: list[Blemish]
    blemish_mask: np.ndarray
    units: dict[str, str]

    def counts(self) -> dict[str, int]:
        """Pixels per class (blemishes are counted as spots, not pixels)."""
        out = {name: int(np.count_nonzero(self.classes == code)) for name, code in DEFECT_CODES.items()}
        out["blemish"] = len(self.blemishes)
        return out


def _line_flags(profile: np.ndarray, pixel_sigma: float, th: DefectThresholds) -> tuple[np.ndarray, np.ndarray]:
    win = max(3, th.bad_line_window | 1)
    ref = ndimage.median_filter(profile, size=win, mode="nearest")
    dev = profile - ref
    return np.abs(dev) > th.bad_line_sigma * pixel_sigma, dev


def classify(maps: DefectMaps, th: DefectThresholds) -> DefectResult:
    """Classify every pixel (see the module docstring)."""
    h, w = maps.dark_mean_dn.shape
    cls = np.zeros((h, w), np.uint8)
    val = np.zeros((h, w), np.float32)
    code = DEFECT_CODES

    dark = maps.dark_long_dn
    dark_med = robust_median(dark)
    dark_sig = robust_sigma(dark)
    noise_med = robust_median(maps.dark_noise_dn)
    have_flat = maps.flat_mean_dn is not None and maps.response is not None
    delta_med = flat_noise_med = math.nan
    if have_flat:
        assert maps.flat_mean_dn is not None and maps.flat_noise_dn is not None
        step = max(1, -(-maps.flat_mean_dn.size // SAMPLE))
        delta_med = robust_median(maps.flat_mean_dn.reshape(-1)[::step] - maps.dark_mean_dn.reshape(-1)[::step])
        flat_noise_med = robust_median(maps.flat_noise_dn)
    dc = maps.dark_current_dn_per_s
    dc_med = robust_median(dc) if bool(np.isfinite(dc[0, 0])) else float("nan")
    units = dict(VALUE_UNITS)
    use_dc = bool(np.isfinite(dc_med) and dc_med > 0)
    if use_dc:
        # the slope must stand out of the pixel's own noise: an RTS pixel's random level jumps
        # between the exposures fake a slope (standard error = noise x se_per_dn)
        units["hot"] = units["warm"] = "x_median_dark_current"
    # 1. point candidates, lowest precedence first so that higher ones overwrite
    consts = np.array([
        dark_med, th.noisy_factor * noise_med, th.warm_sigma * dark_sig, th.warm_min_excess_dn, dc_med,
        maps.dark_current_se_per_dn, th.warm_sigma, th.warm_dark_current_factor, th.hot_dark_current_factor,
        th.hot_sigma * dark_sig, th.dead_response, th.stuck_noise_fraction * noise_med,
        th.stuck_noise_fraction * flat_noise_med, th.stuck_response * abs(delta_med),
    ], np.float32)
    codes = np.array([code["noisy"], code["warm"], code["hot"], code["dead"], code["stuck"]], np.uint8)
    f32 = np.float32
    dummy = np.zeros((1, 1), f32)

    def arg(a: np.ndarray | None, needed: bool) -> np.ndarray:
        return np.asarray(a, f32) if needed and a is not None else dummy

    _point_classes(np.asarray(dark, f32), np.asarray(maps.dark_noise_dn, f32), arg(dc, use_dc),
                   arg(maps.response, have_flat), arg(maps.flat_mean_dn, have_flat),
                   arg(maps.dark_mean_dn, have_flat), arg(maps.flat_noise_dn, have_flat), use_dc, have_flat,
                   consts, cls, val, codes)
    point = cls > 0

    # 2. bad lines
    col_bad = np.zeros(w, bool)
    row_bad = np.zeros(h, bool)
    col_val = np.zeros(w, np.float32)
    row_val = np.zeros(h, np.float32)
    frac_c = np.count_nonzero(point, axis=0) / h
    frac_r = np.count_nonzero(point, axis=1) / w
    col_bad |= frac_c >= th.bad_line_fraction
    row_bad |= frac_r >= th.bad_line_fraction
    col_val[col_bad] = frac_c[col_bad]
    row_val[row_bad] = frac_r[row_bad]
    sources: list[tuple[np.ndarray, float, float]] = [(dark, dark_sig, dark_med)]  # dark excess over its median
    if have_flat:
        assert maps.response is not None
        sources.append((maps.response, robust_sigma(maps.response), 0.0))
    for image, sigma, shift in sources:
        if not np.isfinite(sigma) or sigma <= 0:
            continue
        if h >= 8:
            # column medians from every k-th row (k odd: both CFA row parities), >= LINE_SAMPLE
            # rows (the median of 160 values sits within ~0.1 pixel sigma of the line's own)
            sub = (image[:: max(1, h // LINE_SAMPLE) | 1] - np.float32(shift)).astype(np.float32)
            fc, dc = _line_flags(np.median(sub, axis=0), sigma, th)
            new = fc & ~col_bad
            col_val[new] = dc[new]
            col_bad |= fc
        if w >= 8:
            sub = (image[:, :: max(1, w // LINE_SAMPLE) | 1] - np.float32(shift)).astype(np.float32)
            fr, dr = _line_flags(np.median(sub, axis=1), sigma, th)
            new = fr & ~row_bad
            row_val[new] = dr[new]
            row_bad |= fr
    point[:, col_bad] = False
    point[row_bad, :] = False
    cls[:, col_bad] = code["bad_column"]
    val[:, col_bad] = col_val[col_bad][None, :]
    cls[row_bad, :] = code["bad_row"]
    val[row_bad, :] = row_val[row_bad][:, None]

    # 3. clusters of point defects
    labels, count = ndimage.label(point, structure=np.ones((3, 3), bool))
    clusters = 0
    largest = 0
    if count:
        sizes = np.bincount(labels.ravel())[1:]
        big = np.flatnonzero(sizes >= th.cluster_min) + 1
        clusters = int(big.size)
        largest = int(sizes.max()) if clusters else 0
        if clusters:
            member = np.isin(labels, big)
            cls[member] = code["cluster"]
            val[member] = sizes[labels[member] - 1].astype(np.float32)

    # 4. blemishes
    blemishes: list[Blemish] = []
    bmask = np.zeros((h, w), bool)
    if have_flat:
        assert maps.response is not None
        blemishes, bmask = find_blemishes(
            maps.response, cls > 0, th.blemish_smooth_px, th.blemish_depth, th.blemish_min_area_px,
            th.blemish_max_area_fraction,
        )
        cls[bmask & (cls == 0)] = code["blemish"]
    return DefectResult(
        classes=cls,
        values=val,
        bad_columns=[int(c) for c in np.flatnonzero(col_bad)],
        bad_rows=[int(r) for r in np.flatnonzero(row_bad)],
        cluster_count=clusters,
        largest_cluster_px=largest,
        blemishes=blemishes,
        blemish_mask=bmask,
        units=units,
    )
