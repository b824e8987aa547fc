"""Defect classification building blocks: robust statistics from strided samples, the per-pixel
point classes of a band, bad-line flags from line profiles, sparse 8-connected labelling.

Order (later steps see earlier results; the sweeps are in :mod:`sensorfleet.emva.analysis`):
1. point candidates from the maps: stuck > dead > hot > warm > noisy (one class per pixel);
2. bad columns / rows: the line's median deviates from its neighbours (dark signal or response),
   or most of its pixels are point candidates; every pixel of such a line gets the line class;
3. clusters: 8-connected groups of >= ``cluster_min`` point defects (off the bad lines);
4. blemishes on the shading-corrected response with every defect neutralised.

The response map used here is already divided by the lens-shading fit, so "dead" means dark
relative to its neighbourhood's illumination, not to the sensor centre.
Memory: a :class:`StridedSample` holds at most ``SAMPLE`` values whatever the sensor size; the
labelling works on the coordinates of the labelled pixels only (O(#pixels labelled)).
See docs/metrics.md for the thresholds and why.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components

from sensorfleet.emva.config import DefectThresholds

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
SAMPLE = 1 << 16  # medians of larger maps use an evenly strided sample of at most this many pixels


def sample(values: np.ndarray) -> np.ndarray:
    """The finite values of a map, strided down to at most SAMPLE of them (the median of 65,536
    pixels is within ~0.5 % of a sigma of the full median (1.25 sigma / sqrt(n)), against
    thresholds of 3-50 sigmas; a full partition of 12 MP costs ~0.1 s per median, one of the
    sample ~0.4 ms)."""
    flat = values.reshape(-1)
    step = max(1, -(-flat.size // SAMPLE))
    v = flat[::step]
    return v[np.isfinite(v)]


def median_of(v: np.ndarray) -> float:
    """Median of already sampled finite values (NaN when empty)."""
    return float(np.median(v)) if v.size else float("nan")


def median_sigma(v: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826 x MAD) of already sampled finite values (NaN, NaN when empty)."""
    if v.size == 0:
        return float("nan"), float("nan")
    med = np.median(v)
    return float(med), float(1.4826 * np.median(np.abs(v - med)))


def site_plane_shape(height: int, width: int, site: int | None) -> tuple[int, int]:
    """Shape of CFA site ``site``'s plane ``a[site // 2::2, site % 2::2]`` (None: the whole map)."""
    if site is None:
        return height, width
    return (height - site // 2 + 1) // 2, (width - site % 2 + 1) // 2


class StridedSample:
    """The values :func:`sample` takes from an (H, W) map (or from one CFA site's plane), gathered
    band by band: flat index ``k * step`` of the plane, ``step = ceil(size / SAMPLE)``.

    Bands must be added in row order; :meth:`values` is then exactly ``sample(plane)``.
    """

    def __init__(self, height: int, width: int, site: int | None = None, keep_index: bool = False) -> None:
        self.site = site
        self.width = width
        self.plane_h, self.plane_w = site_plane_shape(height, width, site)
        self.step = max(1, -(-(self.plane_h * self.plane_w) // SAMPLE))
        self.keep_index = keep_index
        self._parts: list[np.ndarray] = []
        self._index: list[np.ndarray] = []

    def _geometry(self, y0: int, rows: int) -> tuple[int, int, int, int, int]:
        """(first band row of the plane, its column, plane rows in the band, offset of the first
        sampled element in the band's flattened plane, flat plane index of the band's start)."""
        if self.site is None:
            r0, c0, py0, prows = 0, 0, y0, rows
        else:
            r0 = (self.site // 2 - y0) % 2
            c0 = self.site % 2
            py0 = (y0 + r0 - self.site // 2) // 2
            prows = max(0, (rows - r0 + 1) // 2)
        start = py0 * self.plane_w
        first = -(-start // self.step) * self.step - start
        return r0, c0, prows, first, start

    def take(self, band: np.ndarray, y0: int) -> np.ndarray:
        """The sampled values of rows ``y0:y0 + len(band)`` of a map (a strided slice of the
        band's flattened plane: no index arrays)."""
        r0, c0, prows, first, _ = self._geometry(y0, band.shape[0])
        if prows == 0 or self.plane_w == 0:
            return np.empty(0, band.dtype)
        plane = band if self.site is None else band[r0::2, c0::2]
        v = plane.reshape(-1)[first :: self.step]
        return v.copy() if np.may_share_memory(v, band) else v  # the band's buffer is reused

    def append(self, values: np.ndarray, y0: int, rows: int) -> None:
        """Keep ``values`` (:meth:`take` of the band of ``rows`` rows starting at row ``y0``,
        or any elementwise function of such takes)."""
        self._parts.append(np.asarray(values))
        if self.keep_index:
            r0, c0, _prows, first, _ = self._geometry(y0, rows)
            k = first + self.step * np.arange(values.size, dtype=np.int64)
            pr, pc = np.divmod(k, self.plane_w)
            sy = 1 if self.site is None else 2
            self._index.append((y0 + r0 + sy * pr) * self.width + c0 + sy * pc)

    def add(self, band: np.ndarray, y0: int) -> None:
        """Keep the sampled values of rows ``y0:y0 + len(band)`` of the map."""
        self.append(self.take(band, y0), y0, band.shape[0])

    def raw(self) -> np.ndarray:
        """All sampled values (NaN included), in raster order."""
        return np.concatenate(self._parts) if self._parts else np.empty(0, np.float32)

    def values(self) -> np.ndarray:
        """The finite sampled values (= ``sample(plane)``)."""
        v = self.raw()
        return v[np.isfinite(v)]

    def index(self) -> np.ndarray:
        """Flat pixel index ``y * W + x`` of each raw value (``keep_index`` only)."""
        return np.concatenate(self._index) if self._index else np.empty(0, np.int64)


@numba.njit(cache=True, nogil=True)
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
    for y in range(h):
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


def point_consts(dark_med: float, dark_sig: float, noise_med: float, dc_med: float, se_per_dn: float,
                 flat_noise_med: float, delta_med: float, th: DefectThresholds) -> np.ndarray:
    """The ``consts`` vector of :func:`_point_classes` (float32) from the maps' robust statistics."""
    return np.array([
        dark_med, th.noisy_factor * noise_med, th.warm_sigma * dark_sig, th.warm_min_excess_dn, dc_med,
        se_per_dn, th.warm_sigma, th.warm_dark_current_factor, th.hot_dark_current_factor,
        th.hot_sigma * dark_sig, th.dead_response, th.stuck_noise_fraction * noise_med,
        th.stuck_noise_fraction * flat_noise_med, th.stuck_response * abs(delta_med),
    ], np.float32)


def point_classes(dark_long: np.ndarray, noise: np.ndarray, dc: np.ndarray | None, response: np.ndarray | None,
                  flat: np.ndarray | None, dark_mean: np.ndarray | None, flat_noise: np.ndarray | None,
                  consts: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 1 on one band ((h, W) float32 maps; ``dc`` None: no dark current, ``response`` None:
    no flat): (classes (h, W) uint8, values (h, W) float32)."""
    h, w = dark_long.shape
    cls = np.zeros((h, w), np.uint8)
    val = np.zeros((h, w), np.float32)
    dummy = np.zeros((1, 1), np.float32)
    have_flat = response is not None

    def arg(a: np.ndarray | None) -> np.ndarray:
        return np.asarray(a, np.float32) if a is not None else dummy

    _point_classes(np.asarray(dark_long, np.float32), np.asarray(noise, np.float32), arg(dc), arg(response),
                   arg(flat if have_flat else None), arg(dark_mean if have_flat else None),
                   arg(flat_noise if have_flat else None), dc is not None, have_flat, consts, cls, val, codes)
    return cls, val


def line_flags(profile: np.ndarray, pixel_sigma: float, th: DefectThresholds) -> tuple[np.ndarray, np.ndarray]:
    """(flags, deviation) of a line profile (one median per line) against its running median."""
    win = max(3, th.bad_line_window | 1)
    ref = ndimage.median_filter(profile, size=win, mode="nearest")
    dev = profile - ref
    return np.abs(dev) > th.bad_line_sigma * pixel_sigma, dev


def label_sparse(lin: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """8-connected components of the pixels at flat indices ``lin`` (``y * width + x``, sorted
    ascending, unique): (label of each pixel, count), labels 0.. numbered in raster order of each
    component's first pixel (as ``ndimage.label`` numbers them). O(n log n) in the pixels given."""
    n = int(lin.size)
    if n == 0:
        return np.empty(0, np.int64), 0
    y, x = np.divmod(lin, width)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    ids = np.arange(n)
    for dy, dx in ((0, -1), (-1, -1), (-1, 0), (-1, 1)):  # the neighbours before a pixel in raster order
        nx = x + dx
        ok = (nx >= 0) & (nx < width) & (y + dy >= 0)
        target = (y + dy) * width + nx
        pos = np.minimum(np.searchsorted(lin, target), n - 1)
        hit = ok & (lin[pos] == target)
        src.append(ids[hit])
        dst.append(pos[hit])
    s = np.concatenate(src)
    d = np.concatenate(dst)
    graph = sparse.coo_matrix((np.ones(s.size, np.int8), (s, d)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(count, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(count)
    return rank[labels], int(count)
