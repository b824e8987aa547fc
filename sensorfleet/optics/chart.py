"""Every edge of one edge-chart image: its ROI, and the e-SFR per CFA channel and on a luminance
estimate (once for a mono sensor), with a quality flag and reason per edge.

Channels of a CFA sensor: ``R``, ``Gr``, ``Gb``, ``B``, each on its own samples (a plane with a
sample every 2 sensor pixels, ``step`` 2), and ``L``, a luminance estimate at full resolution:
each CFA site's samples mapped affinely so that its dark and light levels become 0 and 1 (the
means of its samples in the lowest and highest quarter of its 2nd..98th percentile range, which
leaves the transition out whatever share of the ROI is dark). The chart is neutral, so the balanced raw image is a mono
image of the edge; no demosaicing filter enters the MTF. Frequencies are in cycles per sensor
pixel for every channel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np

from sensorfleet.optics.detect import DetectConfig, EdgeRoi, divided, edge_rois, rois_from_manifest
from sensorfleet.optics.esfr import (
    STATUS_NAMES,
    EdgeSfr,
    SfrConfig,
    channel_lengths,
    edge_sfr,
    roi_sfrs_into,
    sfr_results,
)

NYQUIST_CY_PER_PX = 0.5
#: the MTF is reported at Nyquist / 4 and Nyquist / 2
NYQUIST_FRACTIONS = (NYQUIST_CY_PER_PX / 4, NYQUIST_CY_PER_PX / 2)
#: an ROI is clipped when more of its pixels than this (count, and share) sit at 0 or the ADC
#: maximum: a stuck pixel or two are defects, not clipping
CLIPPED_MIN_PIXELS = 2
CLIPPED_FRACTION = 0.002
LUMINANCE = "L"
MONO = "mono"

SfrFunction = Callable[[np.ndarray, float, SfrConfig], EdgeSfr]


@dataclass(frozen=True)
class ChartConfig:
    """Edge search, e-SFR and quality limits of a chart analysis."""

    detect: DetectConfig = DetectConfig()
    sfr: SfrConfig = SfrConfig()
    #: edges tilted less than this (or more than ``max_angle_deg``) give too few phases
    min_angle_deg: float = 1.0
    max_angle_deg: float = 25.0


@dataclass(frozen=True)
class EdgeMeasurement:
    """One edge in one channel. MTF values are NaN unless ``quality == 'ok'``."""

    roi: EdgeRoi
    channel: str
    x_px: float
    y_px: float
    field_frac: float  # distance from the sensor centre / half diagonal
    orientation: str  # vertical or horizontal (the edge's own direction)
    direction: str  # tangential (edge normal along the radius) or sagittal
    angle_deg: float
    mtf50_cy_per_px: float
    mtf_nyquist4: float
    mtf_nyquist2: float
    edge_snr: float
    quality: str
    reason: str
    sfr: EdgeSfr | None


def channel_sites(cfa_pattern: str) -> dict[str, tuple[int, int]]:
    """(row, column) offset of each CFA channel in the 2x2 tile: R, Gr, Gb, B (the G on a red
    row is Gr); empty for mono."""
    if cfa_pattern == "mono":
        return {}
    sites: dict[str, tuple[int, int]] = {}
    for i, letter in enumerate(cfa_pattern):
        oy, ox = divmod(i, 2)
        name = letter if letter != "G" else ("Gr" if "R" in cfa_pattern[2 * oy:2 * oy + 2] else "Gb")
        sites[name] = (oy, ox)
    return {name: sites[name] for name in ("R", "Gr", "Gb", "B")}


def balanced_luminance(roi: np.ndarray, y0: int, x0: int, cfa_pattern: str) -> np.ndarray:
    """The ROI with each CFA site mapped so that its dark and light levels become 0 and 1."""
    return _balanced(roi, _site_offsets(channel_sites(cfa_pattern), y0, x0))


def _site_offsets(sites: dict[str, tuple[int, int]], y0: int, x0: int) -> np.ndarray:
    """``(sites, 2)`` int64: each CFA site's (row, column) offset in an ROI whose corner is (y0, x0)."""
    return np.array([((oy - y0) % 2, (ox - x0) % 2) for oy, ox in sites.values()], np.int64).reshape(-1, 2)


def _balanced(roi: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.empty(roi.shape, dtype=np.float64)
    if roi.size:
        _balance_sites(np.asarray(roi, dtype=np.float64), offsets, out)
    return out


@numba.njit(cache=True, nogil=True)
def _balance_sites(roi: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """:func:`_balance_plane` on each CFA site's samples, ``offsets[s]`` its (row, column) in the ROI."""
    for s in range(offsets.shape[0]):
        a, b = offsets[s, 0], offsets[s, 1]
        _balance_plane(roi[a::2, b::2], out[a::2, b::2])


@numba.njit(cache=True, nogil=True)
def _keep_extreme(buf: np.ndarray, count: int, v: float, sign: float) -> int:
    """Insert ``v`` into ``buf[:count]``, kept sorted by ``sign * value`` ascending and at most
    ``buf.size`` long (the largest dropped); returns the new count."""
    if count == buf.size:
        if not sign * v < sign * buf[count - 1]:
            return count
        i = count - 1
    else:
        i = count
        count += 1
    while i > 0 and sign * buf[i - 1] > sign * v:
        buf[i] = buf[i - 1]
        i -= 1
    buf[i] = v
    return count


@numba.njit(cache=True, nogil=True)
def _order_statistics(plane: np.ndarray, stride: int, n: int, k_lo: int, k_hi: int) -> tuple[float, float]:
    """The ``k_lo``-th and ``k_hi``-th smallest (0-based; ``k_lo <= k_hi < n``) of the ``n`` samples
    ``plane.flat[s * stride]`` (raster order), in one pass: the ``k_lo + 1`` smallest and the
    ``n - k_hi`` largest are kept in two small sorted buffers (the 2nd and 98th percentiles need
    ~2 % of the samples each). The same values as a selection (``np.partition``), ties included."""
    w = plane.shape[1]
    low = np.empty(k_lo + 1)
    high = np.empty(n - k_hi)
    n_low = n_high = 0
    row = col = 0  # of sample s: (s * stride) // w and (s * stride) % w, without a division
    for _ in range(n):
        v = plane[row, col]
        n_low = _keep_extreme(low, n_low, v, 1.0)
        n_high = _keep_extreme(high, n_high, v, -1.0)
        col += stride
        while col >= w:
            col -= w
            row += 1
    return low[k_lo], high[n - 1 - k_hi]


@numba.njit(cache=True, nogil=True)
def _balance_plane(plane: np.ndarray, out: np.ndarray) -> None:
    """``out = (plane - dark) / (light - dark)``: dark and light the means of the samples in the
    lowest and highest quarter of the 2nd..98th percentile range (nearest-rank percentiles of at
    most ~1024 evenly strided samples, in raster order, by :func:`_order_statistics`; the means
    over all samples, in raster order). ``plane`` and ``out`` may be strided views ``(h, w)``."""
    h, w = plane.shape
    size = h * w
    if size == 0:
        return
    stride = max(1, size // 1024)
    n = (size + stride - 1) // stride
    k_lo, k_hi = int(0.02 * (n - 1)), int(0.98 * (n - 1))
    p_lo, p_hi = _order_statistics(plane, stride, n, k_lo, k_hi)
    span = p_hi - p_lo
    s_lo, n_lo, s_hi, n_hi = 0.0, 0, 0.0, 0
    for i in range(h):
        for j in range(w):
            v = plane[i, j]
            if v <= p_lo + 0.25 * span:
                s_lo += v
                n_lo += 1
            elif v >= p_hi - 0.25 * span:
                s_hi += v
                n_hi += 1
    dark = s_lo / n_lo if n_lo else p_lo
    light = s_hi / n_hi if n_hi else p_hi
    scale = 1.0 / (light - dark) if light > dark else 0.0
    for i in range(h):
        for j in range(w):
            out[i, j] = (plane[i, j] - dark) * scale


def _geometry(roi: EdgeRoi, shape: tuple[int, int]) -> tuple[float, float, float, str, str]:
    """(x, y, field fraction, orientation, direction) of an ROI: the same for each of its channels."""
    h, w = shape
    x, y = roi.centre
    dx, dy = x - (w - 1) / 2.0, y - (h - 1) / 2.0
    field = math.hypot(dx, dy) / math.hypot(w / 2.0, h / 2.0)
    radial_along_normal = abs(dx) >= abs(dy) if roi.vertical else abs(dy) > abs(dx)
    return (x, y, field, "vertical" if roi.vertical else "horizontal",
            "tangential" if radial_along_normal else "sagittal")


def _measure(roi: EdgeRoi, patch: np.ndarray, step: float, channel: str,
             place: tuple[float, float, float, str, str], config: ChartConfig, sfr_fn: SfrFunction,
             clipped: bool) -> EdgeMeasurement:
    """One edge in one channel through ``sfr_fn`` (e.g. the plain numpy e-SFR)."""
    result = sfr_fn(patch if roi.vertical else patch.T, step, config.sfr) if roi.quality == "ok" and not clipped else None
    return _measurement(roi, channel, place, config, clipped, result, None)


def _measurement(roi: EdgeRoi, channel: str, place: tuple[float, float, float, str, str], config: ChartConfig,
                 clipped: bool, result: EdgeSfr | None, figures: tuple[float, float, float] | None) -> EdgeMeasurement:
    """The measurement of one edge in one channel from its e-SFR ``result`` (None: not measured,
    the ROI's quality or clipping says why); ``figures``: (MTF50, MTF at Nyquist/4, /2) when
    computed already (else from ``result``)."""
    quality, reason = roi.quality, ""
    if quality == "ok" and clipped:
        quality, reason = "clipped", "pixels at 0 or the ADC maximum in the ROI"
    if quality == "ok" and result is not None:
        quality = STATUS_NAMES[result.status]
        if result.ok and not config.min_angle_deg <= abs(result.angle_deg) <= config.max_angle_deg:
            quality = "bad_angle"
            reason = f"edge angle {result.angle_deg:.2f} deg outside {config.min_angle_deg}..{config.max_angle_deg}"
    elif not reason:
        reason = {"near_border": "ROI reaches the image border", "too_short": f"edge shorter than "
                  f"{config.detect.min_edge_length_px} px"}.get(quality, quality)
    if quality in ("not_found", "too_short") and not reason:
        reason = "no edge transition in the ROI" if quality == "not_found" else "too few rows after phase trimming"
    nan = math.nan
    good = result if quality == "ok" else None
    if good is None:
        figures = (nan, nan, nan)
    elif figures is None:
        figures = good.figures(NYQUIST_FRACTIONS)
    x, y, field, orientation, direction = place
    return EdgeMeasurement(
        roi, channel, x, y, field, orientation, direction, result.angle_deg if result is not None else nan,
        figures[0], figures[1], figures[2], good.snr if good else nan, quality, reason, good)


def analyse_chart(image: np.ndarray, cfa_pattern: str, max_dn: float,
                  boxes: Sequence[tuple[int, int, int, int]] | None = None, config: ChartConfig = ChartConfig(),
                  sfr_fn: SfrFunction = edge_sfr, n_frames: int = 1) -> list[EdgeMeasurement]:
    """Every edge of a chart image ``image / n_frames`` ``(H, W)`` (an average of frames, DN) in
    every channel. ``image`` may be the integer sum of ``n_frames`` frames: the mean is never formed
    whole (the square search divides each pixel as it reads it, each ROI is divided when cut; the
    same values as analysing the mean).

    ``boxes``: a manifest ROI list ``(x, y, width, height)``, one edge each; None: the squares
    are found. ``sfr_fn``: the e-SFR implementation (the compiled one; the benchmark passes the
    numpy one). An ROI with more than 2 pixels and 0.2 % of its pixels at 0 or ``max_dn`` flags the
    edge ``clipped``.
    """
    n = n_frames
    rois = (edge_rois(image, config.detect, n) if boxes is None
            else rois_from_manifest(image, boxes, config.detect, n))
    sites = channel_sites(cfa_pattern)
    offsets = {(a, b): _site_offsets(sites, a, b) for a in (0, 1) for b in (0, 1)}  # by the ROI corner's parity
    if sfr_fn is edge_sfr:
        return _compiled_measurements(image, n, rois, sites, offsets, max_dn, config)
    out: list[EdgeMeasurement] = []
    for roi in rois:
        patch = divided(image[roi.y0:roi.y1, roi.x0:roi.x1], n)
        at_limits = int(np.count_nonzero(patch >= max_dn - 0.5) + np.count_nonzero(patch <= 0.5))
        clipped = at_limits > max(CLIPPED_MIN_PIXELS, CLIPPED_FRACTION * patch.size)
        place = _geometry(roi, image.shape)
        full = (_balanced(patch, offsets[roi.y0 % 2, roi.x0 % 2]) if patch.size else patch) if sites else patch
        out.append(_measure(roi, full, 1.0, LUMINANCE if sites else MONO, place, config, sfr_fn, clipped))
        for name, (oy, ox) in sites.items():
            plane = patch[(oy - roi.y0) % 2::2, (ox - roi.x0) % 2::2]
            out.append(_measure(roi, plane, 2.0, name, place, config, sfr_fn, clipped))
    return out


def _compiled_measurements(image: np.ndarray, n: int, rois: list[EdgeRoi], sites: dict[str, tuple[int, int]],
                           offsets: dict[tuple[int, int], np.ndarray], max_dn: float,
                           config: ChartConfig) -> list[EdgeMeasurement]:
    """:func:`analyse_chart` with the default e-SFR: every ROI cut, divided, checked for clipping,
    balanced and measured in every channel in one compiled call (:func:`_chart_sfrs`; the same
    operations as the per-ROI path, bit for bit), then the measurements made from its arrays."""
    names = [LUMINANCE, *sites] if sites else [MONO]
    measured = np.array([r.quality == "ok" for r in rois], np.bool_)
    by_parity = np.stack([offsets[a, b] for a in (0, 1) for b in (0, 1)])  # (4, sites, 2), index 2 * (y0 % 2) + x0 % 2
    sfr = config.sfr
    clipped, stats, freq, mtf, n_freq = _chart_sfrs(
        image, float(n), np.array([(r.y0, r.y1, r.x0, r.x1) for r in rois], np.int64).reshape(len(rois), 4),
        measured, np.array([r.vertical for r in rois], np.bool_), by_parity, bool(sites), float(max_dn),
        sfr.oversampling, sfr.fit_degree, sfr.min_rows, sfr.max_frequency_cy_per_px, *NYQUIST_FRACTIONS)
    out: list[EdgeMeasurement] = []
    for i, (roi, is_clipped, rows, lengths) in enumerate(zip(rois, clipped.tolist(), stats.tolist(),
                                                            n_freq.tolist(), strict=True)):
        place = _geometry(roi, image.shape)
        if not measured[i] or is_clipped:
            out.extend(_measurement(roi, name, place, config, is_clipped, None, None) for name in names)
            continue
        for name, (result, figures) in zip(names, sfr_results(rows, lengths, freq[i], mtf[i]), strict=True):
            out.append(_measurement(roi, name, place, config, False, result, figures))
    return out


@numba.njit(cache=True, nogil=True)
def _chart_sfrs(image: np.ndarray, n: float, bounds: np.ndarray, measured: np.ndarray, vertical: np.ndarray,
                by_parity: np.ndarray, balance: bool, max_dn: float, ovs: int, degree: int, min_rows: int,
                max_frequency: float, at_a: float,
                at_b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every ROI ``image[y0:y1, x0:x1] / n`` (``bounds`` rows (y0, y1, x0, x1)) that is ``measured``:
    whether it is clipped (more than ``CLIPPED_MIN_PIXELS`` and ``CLIPPED_FRACTION`` of its pixels
    within 0.5 DN of 0 or ``max_dn``) and, if not, its channels' e-SFRs (:func:`roi_sfrs_into`; the
    full ROI balanced per CFA site when ``balance``, then each site's plane at ``by_parity[2 *
    (y0 % 2) + x0 % 2]``). Returns ``clipped`` (k,), ``stats`` (k, channels, 9), ``freq`` and
    ``mtf`` (k, channels, longest), ``n_freq`` (k, channels); rows of ROIs not measured are NaN
    and zero."""
    k = bounds.shape[0]
    n_ch = 1 + by_parity.shape[1]
    n_freq = np.zeros((k, n_ch), np.int64)
    for i in range(k):
        if measured[i]:
            y0, y1, x0, x1 = bounds[i, 0], bounds[i, 1], bounds[i, 2], bounds[i, 3]
            n_freq[i] = channel_lengths((y1 - y0, x1 - x0), by_parity[2 * (y0 % 2) + x0 % 2], vertical[i],
                                         max_frequency)
    longest = max(1, n_freq.max()) if k else 1
    clipped = np.zeros(k, np.bool_)
    stats = np.full((k, n_ch, 9), np.nan)
    freq = np.zeros((k, n_ch, longest))
    mtf = np.zeros((k, n_ch, longest))
    for i in range(k):
        if not measured[i]:
            continue
        y0, y1, x0, x1 = bounds[i, 0], bounds[i, 1], bounds[i, 2], bounds[i, 3]
        patch = np.empty((y1 - y0, x1 - x0))
        at_limits = 0
        for r in range(y1 - y0):
            for c in range(x1 - x0):
                v = image[y0 + r, x0 + c] / n
                patch[r, c] = v
                if v >= max_dn - 0.5:
                    at_limits += 1
                if v <= 0.5:
                    at_limits += 1
        clipped[i] = at_limits > max(float(CLIPPED_MIN_PIXELS), CLIPPED_FRACTION * patch.size)
        if clipped[i]:
            continue
        own = by_parity[2 * (y0 % 2) + x0 % 2]
        full = patch
        if balance:
            full = np.empty_like(patch)
            _balance_sites(patch, own, full)
        roi_sfrs_into(full, patch, own, vertical[i], ovs, degree, min_rows, at_a, at_b, n_freq[i], stats[i], freq[i],
                      mtf[i])
    return clipped, stats, freq, mtf, n_freq
