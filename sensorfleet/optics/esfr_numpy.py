"""The e-SFR steps of :mod:`sensorfleet.optics.esfr` written in plain numpy (vectorized per ROI,
``np.polyfit``, ``np.bincount``, an FFT): the benchmark's baseline and the tests' independent
cross-check of the compiled kernel. Same inputs, same result type."""

from __future__ import annotations

import math

import numpy as np

from sensorfleet.optics.esfr import (
    MAX_DERIVATIVE_CORRECTION,
    OUTLIER_FAR_CONTRAST,
    OUTLIER_NEAR_CONTRAST,
    OUTLIER_NOISE_MULTIPLE,
    STATUS_NO_EDGE,
    STATUS_OK,
    STATUS_TOO_SHORT,
    EdgeSfr,
    SfrConfig,
)


def _centroids(roi: np.ndarray, sign: float, centre: np.ndarray) -> np.ndarray:
    cols = roi.shape[1]
    pos = np.arange(cols - 1) + 0.5
    u = (pos[None, :] - centre[:, None]) / (cols / 2.0)
    w = np.where(np.abs(u) < 1.0, 0.54 + 0.46 * np.cos(np.pi * u), 0.0)
    d = sign * np.diff(roi, axis=1) * w
    den = d.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (d * pos).sum(axis=1) / den, np.nan)


def _fit_edge(roi: np.ndarray, sign: float, degree: int) -> np.ndarray:
    rows, cols = roi.shape
    t = (np.arange(rows) - (rows - 1) / 2.0) / rows
    centre = np.full(rows, cols / 2.0)
    for _ in range(2):
        cent = _centroids(roi, sign, centre)
        good = np.isfinite(cent)
        if good.sum() <= degree:
            return np.full(rows, np.nan)
        centre = np.polyval(np.polyfit(t[good], cent[good], degree), t)
    return centre


def _bins(roi: np.ndarray, edge: np.ndarray, ovs: int) -> tuple[np.ndarray, np.ndarray]:
    """(distance from the edge, bin index) of every pixel."""
    cols = roi.shape[1]
    d = np.arange(cols)[None, :] - edge[:, None]
    return d, np.floor((d + cols / 2.0) * ovs).astype(np.int64)


def _esf(roi: np.ndarray, edge: np.ndarray, ovs: int, prev: np.ndarray | None = None,
         limit_far: float = np.inf, limit_near: float = np.inf) -> np.ndarray:
    cols = roi.shape[1]
    nb = cols * ovs
    d, b = _bins(roi, edge, ovs)
    keep = (b >= 0) & (b < nb)
    if prev is not None:
        limit = np.where(np.abs(d) >= cols / 4.0, limit_far, limit_near)
        keep &= np.abs(roi - prev[np.clip(b, 0, nb - 1)]) <= limit
    sums = np.bincount(b[keep], roi[keep], minlength=nb)
    counts = np.bincount(b[keep], minlength=nb)
    filled = counts > 0
    idx = np.arange(nb)
    return np.interp(idx, idx[filled], sums[filled] / counts[filled])


def _plateau_residuals(roi: np.ndarray, edge: np.ndarray, ovs: int, esf: np.ndarray, limit: float) -> np.ndarray:
    d, b = _bins(roi, edge, ovs)
    far = (np.abs(d) >= roi.shape[1] / 4.0) & (b >= 0) & (b < esf.size)
    resid = np.abs(roi[far] - esf[b[far]])
    return resid[resid <= limit]


def _mtf(esf: np.ndarray, n_freq: int) -> np.ndarray:
    nb = esf.size
    lsf = np.empty(nb)
    lsf[1:-1] = 0.5 * (esf[2:] - esf[:-2])
    lsf[0], lsf[-1] = lsf[1], lsf[-2]
    peak = int(np.argmax(lsf))
    half = max(peak, nb - 1 - peak) + 1.0
    lsf *= 0.54 + 0.46 * np.cos(np.pi * (np.arange(nb) - peak) / half)
    spectrum = np.abs(np.fft.fft(lsf))[:n_freq]
    nu = np.arange(n_freq) / nb
    corr = np.ones(n_freq)
    corr[1:] = np.maximum(np.sinc(2 * nu[1:]) * np.sinc(nu[1:]), 1.0 / MAX_DERIVATIVE_CORRECTION)
    return spectrum / abs(lsf.sum()) / corr


def edge_sfr_numpy(roi: np.ndarray, step: float = 1.0, config: SfrConfig = SfrConfig()) -> EdgeSfr:
    """:func:`sensorfleet.optics.esfr.edge_sfr` in plain numpy."""
    roi = np.asarray(roi, dtype=np.float64)
    rows, cols = roi.shape
    n_freq = int(cols * step * config.max_frequency_cy_per_px) + 1
    k = max(1, cols // 8)
    left, right = roi[:, :k].mean(), roi[:, cols - k:].mean()
    sign = 1.0 if right >= left else -1.0
    failed = EdgeSfr(STATUS_NO_EDGE, np.arange(n_freq) / (cols * step), np.zeros(n_freq), 0.0, math.nan, 0.0, 0.0, 0)
    if rows < 2 or cols < 8 or right == left:
        return failed
    edge = _fit_edge(roi, sign, config.fit_degree)
    mid = (rows - 1) // 2
    if not np.isfinite(edge[mid]):
        return failed
    slope = float(np.gradient(edge)[mid]) if config.fit_degree > 1 else float((edge[-1] - edge[0]) / (rows - 1))
    used = rows
    if slope != 0 and rows * abs(slope) >= 1:
        used = int(math.floor(rows * abs(slope)) / abs(slope))
    freq = np.arange(n_freq) / (cols * math.cos(math.atan(slope)) * step)
    angle = math.degrees(math.atan(slope))
    if used < config.min_rows:
        return EdgeSfr(STATUS_TOO_SHORT, freq, np.zeros(n_freq), angle, float(edge[mid]), 0.0, 0.0, used)
    r0 = (rows - used) // 2
    sub, sub_edge = roi[r0:r0 + used], edge[r0:r0 + used]
    ovs = config.oversampling
    first = _esf(sub, sub_edge, ovs)
    quarter = first.size // 4
    contrast = abs(first[-quarter:].mean() - first[:quarter].mean())
    resid = _plateau_residuals(sub, sub_edge, ovs, first, np.inf)
    robust = 1.4826 * float(np.median(resid[::max(1, resid.size // 512)])) if resid.size else 0.0
    limit_far = max(OUTLIER_NOISE_MULTIPLE * robust, OUTLIER_FAR_CONTRAST * contrast)
    limit_near = max(OUTLIER_NOISE_MULTIPLE * robust, OUTLIER_NEAR_CONTRAST * contrast)
    esf = _esf(sub, sub_edge, ovs, first, limit_far, limit_near)
    contrast = abs(esf[-quarter:].mean() - esf[:quarter].mean())
    kept = _plateau_residuals(sub, sub_edge, ovs, esf, limit_far)
    noise = float(np.sqrt(np.mean(kept**2))) if kept.size > 1 else 0.0
    mtf = _mtf(esf if sign > 0 else esf[::-1], n_freq)
    return EdgeSfr(STATUS_OK, freq, mtf, angle, float(edge[mid]), float(contrast), noise, used)
