"""e-SFR of one slanted edge (ISO 12233:2023, edge-based spatial frequency response).

One compiled kernel does every step for one region of interest (ROI) holding one near-vertical
edge (a horizontal edge is passed transposed):

1. polarity: the edge is made dark-to-light from left to right;
2. edge location per row: centroid of the row's first derivative ([-1, 1], at half-pixel
   positions), under a Hamming window; first centred on the ROI, then (second pass) on the
   fitted edge of the first pass, as sfrmat4/5 do;
3. polynomial fit of the centroids over the rows (degree ``fit_degree``; 1 = a straight edge);
   the angle is the fit's slope at the middle row;
4. the rows used are trimmed to a whole number of phase cycles (``floor(n |slope|) / |slope|``),
   so every sub-pixel phase is equally represented;
5. every pixel is projected along the fitted edge onto the x axis and binned at
   ``oversampling`` bins per pixel: the oversampled edge spread function (ESF); empty bins are
   filled by linear interpolation; a second binning leaves out the outliers of the first
   (stuck, hot or dust-shadowed pixels: see ``OUTLIER_*``);
6. line spread function (LSF): central difference of the ESF, times a Hamming window centred
   on the LSF peak and spanning the whole ESF (a window narrowed to 4x the 10-90 % rise was
   tried: +2 % MTF50 bias, no less noise at SNR 50);
7. discrete Fourier transform of the windowed LSF up to 1 cycle per (full-pitch) pixel,
   normalized to its zero frequency; divided by the central difference's own response
   ``sin(2 pi nu) / (2 pi nu)`` and by the bins' box average ``sin(pi nu) / (pi nu)`` (nu in
   cycles per bin; the rows span whole phase cycles, so samples fill each bin uniformly; the
   correction is capped at 10x). sfrmat5 corrects the derivative only; the box term is 2.5 % at
   0.25 cycles/pixel for a CFA plane's 0.5-pixel bins;
8. frequencies: ``k / n_cols`` cycles per ROI pixel along x, divided by ``cos(angle)`` (the
   ESF was sampled along x, not along the edge normal) and by the sample ``step`` (2 for a CFA
   colour plane, whose samples are 2 sensor pixels apart), so they are in cycles per sensor pixel.

The plain numpy implementation of the same steps is :mod:`sensorfleet.optics.esfr_numpy` (the
benchmark's baseline and the tests' cross-check). Choices against sfrmat5 and MTF Mapper:
docs/metrics.md, "Slanted-edge SFR".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

STATUS_OK = 0
STATUS_NO_EDGE = 1  # no contrast, or a row's derivative sums to nothing
STATUS_TOO_SHORT = 2  # fewer rows than min_rows after trimming
STATUS_NAMES = {STATUS_OK: "ok", STATUS_NO_EDGE: "not_found", STATUS_TOO_SHORT: "too_short"}

#: outliers (stuck or hot pixels, dust) are left out of the second ESF binning: pixels farther from
#: the first pass's ESF than 10 robust noise sigmas (median absolute residual on the plateaus x
#: 1.4826), and at least 1 % of the contrast on the plateaus, 30 % near the edge (where the ESF
#: changes within a bin)
OUTLIER_NOISE_MULTIPLE = 10.0
OUTLIER_FAR_CONTRAST = 0.01
OUTLIER_NEAR_CONTRAST = 0.3
#: largest derivative correction (sfrmat caps it at 10 as well)
MAX_DERIVATIVE_CORRECTION = 10.0


@dataclass(frozen=True)
class SfrConfig:
    """Parameters of the e-SFR (defaults: ISO 12233:2023 / sfrmat5 practice)."""

    oversampling: int = 4
    fit_degree: int = 1
    #: rows (samples along the edge, in the ROI's own sampling) needed after phase trimming
    min_rows: int = 16
    #: highest frequency reported, cycles per sensor pixel
    max_frequency_cy_per_px: float = 1.0


@dataclass(frozen=True)
class EdgeSfr:
    """The e-SFR of one edge: ``mtf`` at ``frequency_cy_per_px`` (cycles per sensor pixel)."""

    status: int
    frequency_cy_per_px: np.ndarray  # (n,) float64
    mtf: np.ndarray  # (n,) float64, 1 at 0
    angle_deg: float  # edge angle from the ROI's column axis (x shift per row), degrees
    edge_x: float  # fitted edge position at the middle row, ROI columns (sample units)
    contrast: float  # light - dark plateau, input units
    noise: float  # rms of the pixel residuals about the ESF on the plateaus, input units
    rows_used: int

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def snr(self) -> float:
        """Edge SNR: plateau contrast over the residual noise (ISO 12233 Annex D style)."""
        return self.contrast / self.noise if self.noise > 0 else math.inf

    def mtf_at(self, frequency_cy_per_px: float) -> float:
        """MTF at one frequency (linear interpolation, as ``np.interp``); NaN when not measured."""
        if not self.ok:
            return math.nan
        return float(_interp(frequency_cy_per_px, self.frequency_cy_per_px, self.mtf))

    def mtf50(self) -> float:
        """MTF50: the first frequency where the MTF falls to 0.5 (cycles per sensor pixel)."""
        return crossing(self.frequency_cy_per_px, self.mtf, 0.5) if self.ok else math.nan

    def figures(self, at_cy_per_px: tuple[float, float]) -> tuple[float, float, float]:
        """(MTF50, MTF at ``at_cy_per_px[0]``, at ``at_cy_per_px[1]``) in one compiled call: the
        values of :meth:`mtf50` and :meth:`mtf_at`; NaN when not measured."""
        if not self.ok:
            return math.nan, math.nan, math.nan
        f = self.frequency_cy_per_px
        return _figures(f, self.mtf, at_cy_per_px[0], at_cy_per_px[1])


def crossing(frequency: np.ndarray, mtf: np.ndarray, level: float) -> float:
    """First frequency where ``mtf`` falls below ``level`` (linear interpolation); NaN if never."""
    return float(_crossing(frequency, mtf, level))


@numba.njit(cache=True, nogil=True)
def _crossing(frequency: np.ndarray, mtf: np.ndarray, level: float) -> float:
    for k in range(mtf.size):
        if mtf[k] < level:
            if k == 0:
                return np.nan
            f0, f1, m0, m1 = frequency[k - 1], frequency[k], mtf[k - 1], mtf[k]
            return f0 + (m0 - level) * (f1 - f0) / (m0 - m1)
    return np.nan


@numba.njit(cache=True, nogil=True)
def _interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """``np.interp(x, xp, fp, right=nan)`` for increasing ``xp``: numpy's own steps and rounding."""
    n = xp.size
    if not x <= xp[n - 1]:
        return np.nan
    if x < xp[0]:
        return fp[0]
    j = np.searchsorted(xp, x, side="right") - 1
    if j >= n - 1:
        return fp[n - 1]
    if xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    v = slope * (x - xp[j]) + fp[j]
    if math.isnan(v):
        v = slope * (x - xp[j + 1]) + fp[j + 1]
        if math.isnan(v) and fp[j] == fp[j + 1]:
            v = fp[j]
    return v


@numba.njit(cache=True, nogil=True)
def _figures(frequency: np.ndarray, mtf: np.ndarray, at_a: float, at_b: float) -> tuple[float, float, float]:
    return _crossing(frequency, mtf, 0.5), _interp(at_a, frequency, mtf), _interp(at_b, frequency, mtf)


def edge_sfr(roi: np.ndarray, step: float = 1.0, config: SfrConfig = SfrConfig()) -> EdgeSfr:
    """e-SFR of a ``(rows, cols)`` ROI holding one near-vertical edge; ``step``: sensor pixels
    between samples (1, or 2 for a CFA colour plane)."""
    roi = np.ascontiguousarray(roi, dtype=np.float64)
    n_freq = int(roi.shape[1] * step * config.max_frequency_cy_per_px) + 1
    mtf = np.zeros(n_freq)
    status, slope, edge_x, contrast, noise, rows = _esfr_kernel(
        roi, config.oversampling, config.fit_degree, config.min_rows, mtf)
    cos = math.cos(math.atan(slope))
    freq = np.arange(n_freq) / (roi.shape[1] * cos * step)
    return EdgeSfr(int(status), freq, mtf, math.degrees(math.atan(slope)), edge_x, contrast, noise, int(rows))


# ------------------------------------------------------------------------------------------
# compiled steps


@numba.njit(cache=True, nogil=True)
def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve the small system ``a x = b`` by Gaussian elimination with partial pivoting."""
    n = b.size
    m = a.copy()
    x = b.copy()
    for c in range(n):
        p = c
        for r in range(c + 1, n):
            if abs(m[r, c]) > abs(m[p, c]):
                p = r
        if p != c:
            for k in range(n):
                m[c, k], m[p, k] = m[p, k], m[c, k]
            x[c], x[p] = x[p], x[c]
        piv = m[c, c]
        if piv == 0.0:
            return np.full(n, np.nan)
        for r in range(c + 1, n):
            f = m[r, c] / piv
            for k in range(c, n):
                m[r, k] -= f * m[c, k]
            x[r] -= f * x[c]
    for c in range(n - 1, -1, -1):
        s = x[c]
        for k in range(c + 1, n):
            s -= m[c, k] * x[k]
        x[c] = s / m[c, c]
    return x


@numba.njit(cache=True, nogil=True)
def _polyfit(t: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    """Least-squares polynomial coefficients (lowest power first) of ``y`` over ``t``."""
    n = degree + 1
    a = np.zeros((n, n))
    b = np.zeros(n)
    powers = np.empty(2 * n - 1)  # one buffer for every row (an allocation per row cost ~half the fit)
    for i in range(t.size):
        if not math.isfinite(y[i]):
            continue
        p = 1.0
        for k in range(2 * n - 1):
            powers[k] = p
            p *= t[i]
        for r in range(n):
            b[r] += powers[r] * y[i]
            for c in range(n):
                a[r, c] += powers[r + c]
    return _solve(a, b)


@numba.njit(cache=True, nogil=True, inline="always")
def _polyval(coef: np.ndarray, t: float) -> float:
    v = 0.0
    for k in range(coef.size - 1, -1, -1):
        v = v * t + coef[k]
    return v


@numba.njit(cache=True, nogil=True)
def _row_centroids(roi: np.ndarray, sign: float, centre: np.ndarray, out: np.ndarray) -> None:
    """Per row: centroid of ``sign`` x the derivative under a Hamming window (half-width
    ``cols / 2``) centred on ``centre[row]``; NaN where the weighted derivative sums to <= 0."""
    rows, cols = roi.shape
    half = cols / 2.0
    step = math.pi / half
    sc, ss = math.cos(step), math.sin(step)
    num = np.zeros(rows)
    den = np.zeros(rows)
    pc = np.empty(rows)
    ps = np.empty(rows)
    for r in range(rows):
        # cos(pi u) along the row by a rotating phasor: two trig calls per row, not per pixel
        angle = math.pi * (0.5 - centre[r]) / half
        pc[r], ps[r] = math.cos(angle), math.sin(angle)
    # the rows are the inner loop: their independent recurrences run side by side (each row's own
    # sequence of operations, hence its centroid, is unchanged)
    for j in range(cols - 1):
        pos = j + 0.5
        for r in range(rows):
            c, s = pc[r], ps[r]
            if abs(pos - centre[r]) < half:
                d = sign * (roi[r, j + 1] - roi[r, j]) * (0.54 + 0.46 * c)
                num[r] += d * pos
                den[r] += d
            pc[r], ps[r] = c * sc - s * ss, c * ss + s * sc
    for r in range(rows):
        out[r] = num[r] / den[r] if den[r] > 0.0 else np.nan


@numba.njit(cache=True, nogil=True)
def _fit_edge(roi: np.ndarray, sign: float, degree: int) -> np.ndarray:
    """Edge position per row: centroids, fit, centroids again about the fit, fit again."""
    rows, cols = roi.shape
    t = (np.arange(rows) - (rows - 1) / 2.0) / max(rows, 1)
    centre = np.full(rows, cols / 2.0)
    cent = np.empty(rows)
    coef = np.zeros(degree + 1)
    for _pass in range(2):
        _row_centroids(roi, sign, centre, cent)
        coef = _polyfit(t, cent, degree)
        for r in range(rows):
            centre[r] = _polyval(coef, t[r])
    return centre


@numba.njit(cache=True, nogil=True)
def _pixel_bins(edge: np.ndarray, r0: int, r1: int, cols: int, ovs: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of rows ``r0:r1`` (``(r1 - r0, cols)``): its ESF bin along the fitted edge (-1
    outside the ``nb`` bins), and whether it lies on a plateau (at least cols / 4 from the edge).
    Computed once for the four passes over the pixels (two binnings, two residual scans)."""
    bins = np.empty((r1 - r0, cols), np.int64)
    far = np.empty((r1 - r0, cols), np.bool_)
    for r in range(r0, r1):
        for j in range(cols):
            d = j - edge[r]
            b = int(math.floor((d + cols / 2.0) * ovs))
            bins[r - r0, j] = b if 0 <= b < nb else -1
            far[r - r0, j] = abs(d) >= cols / 4.0
    return bins, far


@numba.njit(cache=True, nogil=True)
def _bin_esf(roi: np.ndarray, bins: np.ndarray, far: np.ndarray, r0: int, esf: np.ndarray, count: np.ndarray,
             prev: np.ndarray, limit_far: float, limit_near: float) -> None:
    """Project the rows ``r0 : r0 + len(bins)`` along the fitted edge into their bins
    (:func:`_pixel_bins`), leaving out the pixels farther than the limit from ``prev`` (the first
    pass's ESF; limits inf the first time; ``limit_far`` on the plateaus, ``limit_near`` nearer);
    fill empty bins by linear interpolation."""
    nb = esf.size
    for i in range(bins.shape[0]):
        row = roi[r0 + i]
        for j in range(bins.shape[1]):
            b = bins[i, j]
            if b >= 0:
                limit = limit_far if far[i, j] else limit_near
                if abs(row[j] - prev[b]) > limit:
                    continue
                esf[b] += row[j]
                count[b] += 1.0
    last = -1
    for b in range(nb):
        if count[b] > 0:
            esf[b] /= count[b]
            if last < 0:
                for k in range(b):
                    esf[k] = esf[b]
            elif last < b - 1:
                for k in range(last + 1, b):
                    esf[k] = esf[last] + (esf[b] - esf[last]) * (k - last) / (b - last)
            last = b
    if last >= 0:
        for k in range(last + 1, nb):
            esf[k] = esf[last]


@numba.njit(cache=True, nogil=True)
def _plateau_residuals(roi: np.ndarray, bins: np.ndarray, far: np.ndarray, r0: int, esf: np.ndarray,
                       limit: float) -> np.ndarray:
    """|pixel - ESF| of the plateau pixels (:func:`_pixel_bins`) inside the bins, those within ``limit``."""
    out = np.empty(bins.size)
    n = 0
    for i in range(bins.shape[0]):
        row = roi[r0 + i]
        for j in range(bins.shape[1]):
            b = bins[i, j]
            if far[i, j] and b >= 0:
                e = abs(row[j] - esf[b])
                if e <= limit:
                    out[n] = e
                    n += 1
    return out[:n]


@numba.njit(cache=True, nogil=True)
def _lsf_mtf(esf: np.ndarray, mtf: np.ndarray) -> None:
    """Windowed central-difference LSF of ``esf``, its DFT magnitude (normalized to DC, corrected
    for the difference's response) at the first ``mtf.size`` frequencies k / nb cycles per bin."""
    nb = esf.size
    lsf = np.empty(nb)
    for k in range(1, nb - 1):
        lsf[k] = 0.5 * (esf[k + 1] - esf[k - 1])
    lsf[0] = lsf[1]
    lsf[nb - 1] = lsf[nb - 2]
    peak = 0
    for k in range(nb):
        if lsf[k] > lsf[peak]:
            peak = k
    half = max(peak, nb - 1 - peak) + 1.0
    for k in range(nb):
        lsf[k] *= 0.54 + 0.46 * math.cos(math.pi * (k - peak) / half)
    dc = 0.0
    for k in range(nb):
        dc += lsf[k]
    # the DFT term by term with a rotating phasor per frequency (two trig calls per frequency, not
    # per term); the frequencies are the inner loop, so their independent recurrences run side by
    # side in SIMD lanes (each frequency's own sequence of operations, hence its value, is unchanged)
    n = mtf.size
    re = np.zeros(n)
    im = np.zeros(n)
    pc = np.empty(n)
    ps = np.empty(n)
    step_c = np.empty(n)
    step_s = np.empty(n)
    for i in range(n):
        w = 2.0 * math.pi * i / nb
        step_c[i], step_s[i] = math.cos(w), math.sin(w)
        pc[i], ps[i] = math.cos(-w * peak), math.sin(-w * peak)
    for k in range(nb):
        v = lsf[k]
        for i in range(n):
            c, s = pc[i], ps[i]
            re[i] += v * c
            im[i] += v * s
            pc[i] = c * step_c[i] - s * step_s[i]
            ps[i] = c * step_s[i] + s * step_c[i]
    for i in range(n):
        nu = i / nb
        corr = 1.0
        if i > 0:
            corr = math.sin(2.0 * math.pi * nu) / (2.0 * math.pi * nu) * math.sin(math.pi * nu) / (math.pi * nu)
            corr = max(corr, 1.0 / MAX_DERIVATIVE_CORRECTION)
        mtf[i] = math.sqrt(re[i] * re[i] + im[i] * im[i]) / abs(dc) / corr if dc != 0.0 else np.nan


@numba.njit(cache=True, nogil=True)
def _esfr_kernel(roi: np.ndarray, ovs: int, degree: int, min_rows: int,
                 mtf: np.ndarray) -> tuple[int, float, float, float, float, int]:
    """Every step for one ROI; returns (status, slope, edge x at the middle row, contrast, noise,
    rows used) and writes the MTF into ``mtf``."""
    rows, cols = roi.shape
    edge_cols = max(1, cols // 8)
    left = roi[:, :edge_cols].mean()
    right = roi[:, cols - edge_cols:].mean()
    sign = 1.0 if right >= left else -1.0
    if rows < 2 or cols < 8 or right == left:
        return STATUS_NO_EDGE, 0.0, np.nan, 0.0, 0.0, 0
    edge = _fit_edge(roi, sign, degree)
    mid = (rows - 1) // 2
    if not math.isfinite(edge[mid]):
        return STATUS_NO_EDGE, 0.0, np.nan, 0.0, 0.0, 0
    slope = (edge[rows - 1] - edge[0]) / (rows - 1) if degree == 1 else 0.5 * (edge[min(mid + 1, rows - 1)] - edge[max(mid - 1, 0)])
    used = rows
    if abs(slope) > 0.0 and rows * abs(slope) >= 1.0:
        used = int(math.floor(rows * abs(slope)) / abs(slope))
    if used < min_rows:
        return STATUS_TOO_SHORT, slope, edge[mid], 0.0, 0.0, used
    r0 = (rows - used) // 2
    r1 = r0 + used
    nb = cols * ovs
    first = np.zeros(nb)
    bins, far = _pixel_bins(edge, r0, r1, cols, ovs, nb)
    _bin_esf(roi, bins, far, r0, first, np.zeros(nb), np.zeros(nb), np.inf, np.inf)
    quarter = nb // 4
    contrast = abs(first[nb - quarter:].mean() - first[:quarter].mean())
    resid = _plateau_residuals(roi, bins, far, r0, first, np.inf)
    # the median of at most ~512 evenly strided residuals: a robust scale needs no more
    robust = 1.4826 * np.median(resid[::max(1, resid.size // 512)]) if resid.size else 0.0
    limit_far = max(OUTLIER_NOISE_MULTIPLE * robust, OUTLIER_FAR_CONTRAST * contrast)
    limit_near = max(OUTLIER_NOISE_MULTIPLE * robust, OUTLIER_NEAR_CONTRAST * contrast)
    esf = np.zeros(nb)
    _bin_esf(roi, bins, far, r0, esf, np.zeros(nb), first, limit_far, limit_near)
    contrast = abs(esf[nb - quarter:].mean() - esf[:quarter].mean())
    kept = _plateau_residuals(roi, bins, far, r0, esf, limit_far)
    noise = math.sqrt(np.mean(kept * kept)) if kept.size > 1 else 0.0
    if sign < 0.0:
        esf = esf[::-1].copy()
    _lsf_mtf(esf, mtf)
    return STATUS_OK, slope, edge[mid], contrast, noise, used


def sfr_results(stats: list[list[float]], n_freq: list[int], freq: np.ndarray,
                mtf: np.ndarray) -> list[tuple[EdgeSfr, tuple[float, float, float]]]:
    """Each channel's :class:`EdgeSfr` and figures from the rows :func:`roi_sfrs_into` fills (``stats``
    as Python floats, no numpy scalars; ``freq`` and ``mtf`` ``(channels, >= max(n_freq))``, each
    result a view of its row's first ``n_freq`` values)."""
    out = []
    for (status, slope, edge_x, contrast, noise, rows, mtf50, at_a, at_b), n, f, m in zip(
            stats, n_freq, freq, mtf, strict=True):
        sfr = EdgeSfr(int(status), f[:n], m[:n], math.degrees(math.atan(slope)), edge_x, contrast, noise, int(rows))
        out.append((sfr, (mtf50, at_a, at_b)))
    return out


@numba.njit(cache=True, nogil=True)
def channel_lengths(shape: tuple[int, int], offsets: np.ndarray, vertical: bool, max_frequency: float) -> np.ndarray:
    """The frequency count of each channel :func:`roi_sfrs_into` measures on an ROI of ``shape``:
    the full ROI (step 1), then each plane at ``offsets`` (step 2)."""
    n_ch = 1 + offsets.shape[0]
    n_freq = np.empty(n_ch, np.int64)
    for c in range(n_ch):
        step = 1.0 if c == 0 else 2.0
        if c == 0:
            cols = shape[1] if vertical else shape[0]
        else:
            h = (shape[0] - offsets[c - 1, 0] + 1) // 2
            w = (shape[1] - offsets[c - 1, 1] + 1) // 2
            cols = w if vertical else h
        n_freq[c] = int(cols * step * max_frequency) + 1
    return n_freq


@numba.njit(cache=True, nogil=True)
def roi_sfrs_into(full: np.ndarray, patch: np.ndarray, offsets: np.ndarray, vertical: bool, ovs: int, degree: int,
                  min_rows: int, at_a: float, at_b: float, n_freq: np.ndarray, stats: np.ndarray, freq: np.ndarray,
                  mtf: np.ndarray) -> None:
    """:func:`edge_sfr` and its figures for ``full`` (step 1) and each plane ``patch[oy::2, ox::2]``
    (step 2), transposed unless ``vertical``: the same steps and operations, for a caller that
    measures many ROIs in one compiled call (:func:`sensorfleet.optics.chart._chart_sfrs`). Writes
    per channel ``stats`` ``(channels, 9)`` (status, slope, edge x, contrast, noise, rows used,
    MTF50, MTF at ``at_a``, ``at_b``; NaN where not measured), the frequencies and the MTF into
    the first ``n_freq[c]`` values of ``freq`` and ``mtf`` rows (``(channels, >= n_freq.max())``,
    zeros); ``n_freq`` from :func:`channel_lengths`."""
    for c in range(n_freq.size):
        step = 1.0 if c == 0 else 2.0
        src = full if c == 0 else patch[offsets[c - 1, 0]::2, offsets[c - 1, 1]::2]
        roi = np.ascontiguousarray(src) if vertical else np.ascontiguousarray(src.T)
        row = mtf[c, :n_freq[c]]
        status, slope, edge_x, contrast, noise, used = _esfr_kernel(roi, ovs, degree, min_rows, row)
        scale = roi.shape[1] * math.cos(math.atan(slope)) * step
        for k in range(n_freq[c]):
            freq[c, k] = k / scale
        stats[c, 0], stats[c, 1], stats[c, 2], stats[c, 3], stats[c, 4], stats[c, 5] = (
            status, slope, edge_x, contrast, noise, used)
        if status == STATUS_OK:
            stats[c, 6], stats[c, 7], stats[c, 8] = _figures(freq[c, :n_freq[c]], row, at_a, at_b)
