"""EMVA 1288 Release 4.0 metrics from the per-point sums and the good-pixel sums of the maps.

Section numbers refer to EMVA Standard 1288 Release 4.0 (Linear). Every formula and every choice
the standard leaves open is written down in ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sensorfleet.emva import band_kernels as bk
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.emva.exposure import same_exposure
from sensorfleet.emva.maps import PassResult


@dataclass(frozen=True)
class PtcPoints:
    """Temporal statistics per operating point over a set of CFA sites (all four = whole sensor).

    Arrays are per point, darks and flats separately: exposure_s (s), photons_per_pixel (mu_p),
    mean_dn (mu_y, DN), var_dn2 (sigma_y^2 from frame pairs, DN^2), n_frames.
    """

    dark_exposure_s: np.ndarray
    dark_mean_dn: np.ndarray
    dark_var_dn2: np.ndarray
    flat_exposure_s: np.ndarray
    flat_photons: np.ndarray
    flat_mean_dn: np.ndarray
    flat_var_dn2: np.ndarray
    flat_n_frames: np.ndarray
    dark_n_frames: np.ndarray
    dark_index: np.ndarray  # index of each dark point in PassResult.points
    flat_index: np.ndarray
    n_pixels: float = math.nan  # pixels behind each mean and variance (the sites' pixel count)


def all_point_stats(result: PassResult, sites: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(mu_y DN, sigma_y^2 DN^2) of every operating point over ``sites`` at once (section 6.1):
    sigma_y^2 = mean over the point's frame pairs of [ mean((y_A - y_B)^2) / 2 - (mu_A - mu_B)^2 / 2 ]
    (NaN for a point with one frame)."""
    n = len(result.points)
    npx = float(result.pixels_per_site[sites].sum())
    nf = np.array([fs.shape[0] for fs in result.frame_sums], np.int64)
    npairs = np.array([ps.shape[0] for ps in result.pair_sq], np.int64)
    mu_f = np.concatenate(result.frame_sums)[:, sites].sum(axis=1) / npx
    f0 = np.zeros(n, np.int64)
    f0[1:] = np.cumsum(nf)[:-1]
    mean = np.add.reduceat(mu_f, f0) / nf
    var = np.full(n, np.nan)
    if npairs.sum():
        msd = np.concatenate(result.pair_sq)[:, sites].sum(axis=1) / npx
        point = np.repeat(np.arange(n), npairs)
        k = np.arange(msd.size) - np.repeat(np.cumsum(npairs) - npairs, npairs)  # pair index within its point
        a = f0[point] + 2 * k
        d_mu = mu_f[a] - mu_f[a + 1]
        per_pair = msd / 2.0 - d_mu**2 / 2.0
        has = npairs > 0
        p0 = np.zeros(n, np.int64)
        p0[1:] = np.cumsum(npairs)[:-1]
        var[has] = np.add.reduceat(per_pair, p0[has]) / npairs[has]
    return mean, var


def ptc_points(result: PassResult, sites: list[int]) -> PtcPoints:
    """Photon-transfer points (darks and flats) over the CFA ``sites``.

    The spatial flat series is left out when another run of frames carries the same operating
    point (then it is a separate averaging series, as in an EMVA 1288 descriptor data set).
    """
    dark: list[tuple[float, float, float, int, int]] = []
    flat: list[tuple[float, float, float, float, int, int]] = []
    skip = None
    if result.flat_spatial is not None:
        key = result.points[result.flat_spatial].key
        if sum(1 for p in result.points if p.key == key) > 1:
            skip = result.flat_spatial
    means, variances = all_point_stats(result, sites)
    for i, p in enumerate(result.points):
        if i == skip:
            continue
        mean, var = float(means[i]), float(variances[i])
        if p.kind == "dark":
            dark.append((p.exposure_s, mean, var, p.n_frames, i))
        else:
            flat.append((p.exposure_s, p.photons_per_pixel, mean, var, p.n_frames, i))
    d = np.array(dark, dtype=float).reshape(-1, 5)
    f = np.array(flat, dtype=float).reshape(-1, 6)
    return PtcPoints(
        dark_exposure_s=d[:, 0],
        dark_mean_dn=d[:, 1],
        dark_var_dn2=d[:, 2],
        flat_exposure_s=f[:, 0],
        flat_photons=f[:, 1],
        flat_mean_dn=f[:, 2],
        flat_var_dn2=f[:, 3],
        flat_n_frames=f[:, 4].astype(int),
        dark_n_frames=d[:, 3].astype(int),
        dark_index=d[:, 4].astype(int),
        flat_index=f[:, 5].astype(int),
        n_pixels=float(result.pixels_per_site[sites].sum()),
    )


def dark_reference(pts: PtcPoints, exposure_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu_y.dark, sigma_y.dark^2) at each exposure: the dark point taken at that exposure (the one
    with the most frames), or the straight line through the dark series (dark signal and its
    variance are linear in time)."""
    mu = np.empty_like(exposure_s, dtype=float)
    var = np.empty_like(exposure_s, dtype=float)
    t = pts.dark_exposure_s
    close = np.asarray(same_exposure(t[None, :], np.asarray(exposure_s, float)[:, None]))
    line_mu = line_var = None
    for k, e in enumerate(exposure_s):
        hit = np.flatnonzero(close[k])
        if hit.size:
            best = hit[np.argmax(pts.dark_n_frames[hit])]
            mu[k], var[k] = pts.dark_mean_dn[best], pts.dark_var_dn2[best]
        elif t.size >= 2:
            if line_mu is None or line_var is None:
                line_mu = np.polyfit(t, pts.dark_mean_dn, 1)
                line_var = np.polyfit(t, pts.dark_var_dn2, 1)
            mu[k] = np.polyval(line_mu, e)
            var[k] = np.polyval(line_var, e)
        else:
            mu[k], var[k] = pts.dark_mean_dn[0], pts.dark_var_dn2[0]
    return mu, var


@dataclass(frozen=True)
class PtcAnalysis:
    """Sensitivity, linearity and dark-noise results of one photon-transfer series."""

    order: np.ndarray  # flat points sorted by illumination
    signal_dn: np.ndarray  # mu_y - mu_y.dark (sorted)
    noise_dn2: np.ndarray  # sigma_y^2 - sigma_y.dark^2 (sorted)
    mean_dark_dn: np.ndarray
    used_in_fit: np.ndarray  # bool (sorted)
    used_in_linearity: np.ndarray  # bool (sorted): the points of the linearity fit
    saturation_index: int
    system_gain_dn_per_e: float  # K
    fit_r2: float
    responsivity_dn_per_photon: float  # R (NaN without photons)
    quantum_efficiency: float  # eta = R / K (fraction, NaN without photons)
    saturation_signal_dn: float  # mu_y.sat - mu_y.dark
    saturation_photons: float  # mu_p.sat
    saturation_capacity_e: float  # mu_e.sat
    temporal_dark_noise_dn: float  # sigma_y.dark (at exposure 0)
    read_noise_dn: float  # K sigma_d
    read_noise_e: float  # sigma_d
    absolute_sensitivity_threshold_e: float  # mu_e.min
    absolute_sensitivity_threshold_photons: float  # mu_p.min
    snr_max_db: float
    dynamic_range_db: float
    linearity_error_pct: float
    linearity_error_min_pct: float
    linearity_error_max_pct: float


def _fit_origin(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y = m x through the origin and R^2 (about the mean of y)."""
    den = float(np.dot(x, x))
    if x.size == 0 or den == 0.0:
        return math.nan, math.nan
    m = float(np.dot(x, y)) / den
    ss_res = float(np.sum((y - m * x) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    return m, r2


def linearity_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Section 6.5: fit y = a x + b minimising the squared *relative* deviations (needs >= 2
    points); return (fit, 100 (y - fit) / fit in %), both shaped like ``y``."""
    w = 1.0 / y
    # minimise sum(((a x + b) / y - 1)^2): normal equations in (a, b)
    A = np.stack([x * w, w], axis=1)
    ata = A.T @ A
    coef = np.linalg.solve(ata, A.T @ np.ones_like(y))
    fit = coef[0] * x + coef[1]
    return fit, 100.0 * (y - fit) / fit


def _linearity(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(LE, min, max) of the relative deviations of :func:`linearity_fit` in %, LE = (max - min) / 2."""
    if x.size < 2:
        return math.nan, math.nan, math.nan
    _, dev = linearity_fit(x, y)
    return float((dev.max() - dev.min()) / 2.0), float(dev.min()), float(dev.max())


def analyse_ptc(
    pts: PtcPoints,
    config: CharacterizationConfig,
    dark_var0_dn2: float | None = None,
) -> PtcAnalysis:
    """Sections 6.1-6.5: gain K, QE, saturation, noise, sensitivity threshold, SNR, DR, linearity.

    ``dark_var0_dn2``: the temporal dark variance at exposure 0 (DN^2) when the caller has a
    better estimate than the photon-transfer dark points (e.g. over non-defective pixels only);
    otherwise it is the intercept of the dark variance over >= 3 exposures, or the variance at the
    shortest exposure.
    """
    have_photons = pts.flat_photons.size > 0 and bool(np.all(pts.flat_photons > 0))
    light = pts.flat_photons if have_photons else pts.flat_exposure_s
    order = np.lexsort((pts.flat_mean_dn, light))
    mu_d, var_d = dark_reference(pts, pts.flat_exposure_s[order])
    signal = pts.flat_mean_dn[order] - mu_d
    noise = pts.flat_var_dn2[order] - var_d
    photons = pts.flat_photons[order]
    light_s = light[order]
    nan = math.nan
    if signal.size == 0:
        raise ValueError("no flat-field operating point: cannot fit the photon transfer curve")
    sat = int(np.nanargmax(noise))
    y_sat = float(signal[sat])
    idx = np.arange(signal.size)
    used = (
        (idx <= sat)
        & (signal <= config.ptc_fit_max_fraction * y_sat)
        & (signal >= config.ptc_fit_min_fraction * y_sat)
        & np.isfinite(noise)
    )
    k, r2 = _fit_origin(signal[used], noise[used])
    if have_photons:
        resp, _ = _fit_origin(photons[used], signal[used])
        eta = resp / k
    else:
        resp, eta = nan, nan

    # dark noise at exposure 0 (section 6.3): intercept of the dark variance over >= 3 exposures
    t = pts.dark_exposure_s
    if dark_var0_dn2 is not None and math.isfinite(dark_var0_dn2):
        var0 = dark_var0_dn2
    elif np.unique(t).size >= 3:
        var0 = float(np.polyval(np.polyfit(t, pts.dark_var_dn2, 1), 0.0))
    else:
        var0 = float(pts.dark_var_dn2[np.argmin(t)])
    var0 = max(var0, config.min_dark_variance_dn2)
    sigma_y_dark = math.sqrt(var0)
    read_dn = math.sqrt(max(var0 - config.quantization_variance_dn2, 0.0))
    read_e = read_dn / k
    mu_e_min = 0.5 + math.sqrt(0.25 + var0 / k**2)
    sat_photons = float(photons[sat]) if have_photons else nan
    sat_e = eta * sat_photons if have_photons else y_sat / k
    lin_sel = (idx <= sat) & (signal >= config.linearity_min_fraction * y_sat) & (
        signal <= config.linearity_max_fraction * y_sat
    )
    le, le_min, le_max = _linearity(light_s[lin_sel], signal[lin_sel])
    return PtcAnalysis(
        order=order,
        signal_dn=signal,
        noise_dn2=noise,
        mean_dark_dn=mu_d,
        used_in_fit=used,
        used_in_linearity=lin_sel,
        saturation_index=sat,
        system_gain_dn_per_e=k,
        fit_r2=r2,
        responsivity_dn_per_photon=resp,
        quantum_efficiency=eta,
        saturation_signal_dn=y_sat,
        saturation_photons=sat_photons,
        saturation_capacity_e=sat_e,
        temporal_dark_noise_dn=sigma_y_dark,
        read_noise_dn=read_dn,
        read_noise_e=read_e,
        absolute_sensitivity_threshold_e=mu_e_min,
        absolute_sensitivity_threshold_photons=mu_e_min / eta if have_photons else nan,
        snr_max_db=10.0 * math.log10(sat_e) if sat_e > 0 else nan,
        dynamic_range_db=20.0 * math.log10(sat_e / mu_e_min) if sat_e > 0 else nan,
        linearity_error_pct=le,
        linearity_error_min_pct=le_min,
        linearity_error_max_pct=le_max,
    )


@dataclass(frozen=True)
class SpatialStats:
    """Section 8: spatial non-uniformity from L-frame averages, temporal residual removed."""

    dark_offset_dn: float
    dark_current_dn_per_s: float
    dsnu_dn: float
    row_fpn_dn: float
    column_fpn_dn: float
    prnu_pct: float  # shading-corrected
    prnu_uncorrected_pct: float  # the standard's formula on the raw flat (incl. illumination)
    mean_dark_dn: float
    mean_flat_dn: float


@dataclass(frozen=True)
class GoodPixelSums:
    """Sums over the good pixels (class 0) of one group (the whole sensor or one CFA site's plane),
    accumulated band by band (:func:`sensorfleet.emva.band_kernels.good_sums`).

    ``sums[q]`` = (n, sum(v - shift_q), sum((v - shift_q)^2)) of quantity q (``band_kernels.Q_*``:
    dark average, dark variance, dark offset, dark current, flat average, flat variance, dark at
    the flat's exposure, shading-corrected flat; DN, DN^2, DN/s); ``row_means`` / ``col_means``
    the dark average's means over the good pixels of each row / column of the plane (NaN where a
    line has none), ``plane_shape`` the plane's (rows, columns).
    """

    sums: np.ndarray  # (8, 3) float64
    shifts: np.ndarray  # (8,) float64
    row_means: np.ndarray
    col_means: np.ndarray
    plane_shape: tuple[int, int]

    def moments(self, q: int) -> tuple[int, float, float]:
        """(n, mean, sample variance) of quantity q over the good pixels."""
        n = int(self.sums[q, 0])
        if n < 2:
            return n, math.nan, math.nan
        s1, s2 = float(self.sums[q, 1]), float(self.sums[q, 2])
        mean = s1 / n
        return n, float(self.shifts[q]) + mean, (s2 - n * mean * mean) / (n - 1)


def line_variances(g: GoodPixelSums, mu: float, var_mean: float, n_frames: int) -> tuple[float, float]:
    """(s^2_cav, s^2_rav): variance of the column means and of the row means of the L-frame average
    about ``mu`` (DN^2), each less the temporal noise left in a line mean (section 8, R4.0)."""
    m, n = g.plane_shape
    with np.errstate(invalid="ignore"):
        s2_cav = float(np.nanmean((g.col_means - mu) ** 2)) - var_mean / (n_frames * m)
        s2_rav = float(np.nanmean((g.row_means - mu) ** 2)) - var_mean / (n_frames * n)
    return s2_cav, s2_rav


def row_col_split(s2: float, s2_rav: float, s2_cav: float, m: int, n: int) -> tuple[float, float]:
    """(s^2_row, s^2_col): the R4.0 split of the spatial variance ``s2`` of an (m, n) image into its
    row and column parts from the variances of its row and column means (unclamped; NaN when
    m n - m - n <= 0)."""
    den = m * n - m - n
    if den <= 0:
        return math.nan, math.nan
    s2_col = (m * n - m) / den * s2_cav - n / den * (s2 - s2_rav)
    s2_row = (m * n - n) / den * s2_rav - m / den * (s2 - s2_cav)
    return s2_row, s2_col


def _row_col(g: GoodPixelSums, mu: float, var_mean: float, n_frames: int, s2: float) -> tuple[float, float]:
    """Row and column fixed-pattern noise (DN) of a 2-D average image (section 8, R4.0 split)."""
    s2_cav, s2_rav = line_variances(g, mu, var_mean, n_frames)
    s2_row, s2_col = row_col_split(s2, s2_rav, s2_cav, *g.plane_shape)
    if math.isnan(s2_row):
        return math.nan, math.nan
    return math.sqrt(max(s2_row, 0.0)), math.sqrt(max(s2_col, 0.0))


def spatial_stats(g: GoodPixelSums, dark_frames: int, flat_frames: int, have_flat: bool, have_shading: bool) -> SpatialStats:
    """DSNU, PRNU, row/column FPN, dark offset and dark current over the good pixels of one group.

    Spatial variance of an L-frame average: ``s^2 = var(<y>) - mean(sigma^2_stack) / L``; the
    shading-corrected flat is ``y' = d + (y_50 - d) / S`` (S the fitted surface, mean 1).
    """
    nan = math.nan
    _, mean_dark, var_dark = g.moments(bk.Q_DARK_MEAN)
    _, dv_mean, _ = g.moments(bk.Q_DARK_VAR)
    s2_dark = var_dark - dv_mean / dark_frames
    dsnu = math.sqrt(max(s2_dark, 0.0))
    row_fpn, col_fpn = _row_col(g, mean_dark, dv_mean, dark_frames, s2_dark)
    _, offset, _ = g.moments(bk.Q_DARK_OFFSET)
    _, current, _ = g.moments(bk.Q_DARK_CURRENT)
    prnu = prnu_raw = nan
    mean_flat = nan
    if have_flat:
        _, mean_flat, var_flat = g.moments(bk.Q_FLAT_MEAN)
        _, fv_mean, _ = g.moments(bk.Q_FLAT_VAR)
        _, mean_ref, _ = g.moments(bk.Q_DARK_AT_FLAT)
        delta = mean_flat - mean_ref
        s2_flat = var_flat - fv_mean / flat_frames
        if delta > 0:
            prnu_raw = 100.0 * math.sqrt(max(s2_flat - s2_dark, 0.0)) / delta
            prnu = prnu_raw
            if have_shading:
                n, _, var_corr = g.moments(bk.Q_CORRECTED)
                if n >= 2:
                    s2_corr = var_corr - fv_mean / flat_frames
                    prnu = 100.0 * math.sqrt(max(s2_corr - s2_dark, 0.0)) / delta
    return SpatialStats(
        dark_offset_dn=offset,
        dark_current_dn_per_s=current,
        dsnu_dn=dsnu,
        row_fpn_dn=row_fpn,
        column_fpn_dn=col_fpn,
        prnu_pct=prnu,
        prnu_uncorrected_pct=prnu_raw,
        mean_dark_dn=mean_dark,
        mean_flat_dn=mean_flat,
    )
