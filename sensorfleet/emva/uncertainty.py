"""Standard uncertainties of the EMVA 1288 metrics from the statistics a session already has.

Nothing here reads a frame: every uncertainty comes from the counts, means, variances and fit
residuals the pass and the sweeps computed (:class:`sensorfleet.emva.metrics.PtcPoints`,
:class:`sensorfleet.emva.metrics.PtcAnalysis`, :class:`sensorfleet.emva.metrics.GoodPixelSums`).
The formulas, their assumptions and what each ``<metric>_u`` is calibrated against are in
docs/metrics.md ("Uncertainty"). Building blocks:

* a mean of ``n`` independent values of variance ``sigma^2``: ``sigma^2 / n``;
* a variance estimated with ``nu`` degrees of freedom per pixel over ``n`` pixels (Gaussian
  noise): ``2 sigma^4 / (nu n)`` (frame pairs: nu = 1 per pair; an L-frame series: nu = L - 1);
* the spatial variance of an L-frame average with the temporal noise removed (section 8):
  ``(4 s^2 sigma^2 / L + 2 sigma^4 / L^2 + 2 sigma^4 / ((L - 1) L^2)) / n`` (the pixel map is a
  property of the sensor, measured whole: only the temporal noise is a measurement error);
* straight-line fits as linear combinations of their points; the photon-transfer slope K with the
  points' modelled variances, scaled up by the fit's Birge ratio (residuals over their modelled
  standard deviations, with the leverage) when the points scatter significantly more than
  modelled (chi-square above its 95 % quantile);
* everything else first order (delta method, central differences) in independent inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import chdtri

from sensorfleet.emva import band_kernels as bk
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.emva.exposure import same_exposure
from sensorfleet.emva.metrics import (
    GoodPixelSums,
    PtcAnalysis,
    PtcPoints,
    line_variances,
    linearity_fit,
)

BIRGE_LEVEL = 0.95
"""The photon-transfer fit's u(K) is scaled by its Birge ratio when the residuals' chi-square is
above this quantile of its distribution under the noise model."""


def line_weights(t: np.ndarray, at: float) -> np.ndarray:
    """Weights ``c_j`` of the least-squares line through points at ``t`` (s) evaluated at ``at``:
    ``value(at) = sum_j c_j y_j`` (one distinct exposure: the mean of the points)."""
    t = np.asarray(t, float)
    stt = float(((t - t.mean()) ** 2).sum())
    c = np.full(t.size, 1.0 / t.size)
    if t.size >= 2 and stt > 0:
        c += (t - t.mean()) * (at - t.mean()) / stt
    return c


def slope_weights(t: np.ndarray) -> np.ndarray:
    """Weights of the least-squares slope over ``t`` (1/s; zeros without two distinct exposures)."""
    t = np.asarray(t, float)
    stt = float(((t - t.mean()) ** 2).sum())
    return (t - t.mean()) / stt if t.size >= 2 and stt > 0 else np.zeros(t.size)


def propagate(f: Callable[..., float], values: Mapping[str, float], u: Mapping[str, float]) -> float:
    """First-order standard uncertainty of ``f(**values)`` for independent inputs of standard
    uncertainty ``u`` (central differences, step u / 10; NaN where f or an input is not finite)."""
    total = 0.0
    for name, ui in u.items():
        if not math.isfinite(ui):
            return math.nan
        if ui == 0.0:
            continue
        h = ui / 10.0
        hi = f(**{**values, name: values[name] + h})
        lo = f(**{**values, name: values[name] - h})
        total += ((hi - lo) / (2.0 * h) * ui) ** 2
    return math.sqrt(total) if math.isfinite(total) else math.nan


def sqrt_u(value: float, u_square: float) -> float:
    """u(sqrt(v)) from u(v) = ``u_square`` at sqrt(v) = ``value`` (>= 0): ``u / (2 value)``, capped
    at ``sqrt(u)`` (the first order blows up at 0, where the estimate is clamped)."""
    if not (math.isfinite(value) and math.isfinite(u_square)):
        return math.nan
    cap = math.sqrt(u_square)
    return min(u_square / (2.0 * value), cap) if value > 0 else cap


@dataclass(frozen=True)
class PtcU:
    """Uncertainties of the photon-transfer quantities every other metric is built from."""

    gain: float  # u(K), DN/e-
    responsivity: float  # u(R), DN/p (NaN without photons)
    signal: np.ndarray  # u(mu_y - mu_y.dark) of each flat point (sorted as PtcAnalysis.order), DN
    birge_ratio: float  # of the K fit (>= 0; NaN with < 2 points)


def _dark_reference_u(pts: PtcPoints, exposure_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per flat point (u^2(mu_y.dark), u^2(sigma^2_y.dark), group): the uncertainty of the dark
    reference :func:`sensorfleet.emva.metrics.dark_reference` subtracts, and which flats share it."""
    n = pts.n_pixels
    t = pts.dark_exposure_s
    v_mean = pts.dark_var_dn2 / (n * pts.dark_n_frames)
    v_var = 2.0 * pts.dark_var_dn2**2 / (n * np.maximum(pts.dark_n_frames // 2, 1))
    um = np.empty(exposure_s.size)
    uv = np.empty(exposure_s.size)
    group = np.empty(exposure_s.size, np.int64)
    for k, e in enumerate(exposure_s):
        hit = np.flatnonzero(np.asarray(same_exposure(t, float(e))))
        if hit.size:
            best = hit[np.argmax(pts.dark_n_frames[hit])]
            um[k], uv[k], group[k] = v_mean[best], v_var[best], best
        else:
            c = line_weights(t, float(e)) if t.size >= 2 else np.ones(1)
            um[k], uv[k], group[k] = float(c**2 @ v_mean[: c.size]), float(c**2 @ v_var[: c.size]), -1 - k
    return um, uv, group


def _origin_slope_u(x: np.ndarray, var_own: np.ndarray, var_shared: np.ndarray, group: np.ndarray) -> float:
    """u of the least-squares slope through the origin of points with independent variances
    ``var_own`` plus a variance ``var_shared`` common to the points of one ``group``."""
    sxx = float(x @ x)
    if x.size == 0 or sxx == 0:
        return math.nan
    total = float((x**2) @ var_own)
    for g in np.unique(group):
        sel = group == g
        total += float(var_shared[sel][0]) * float(x[sel].sum()) ** 2
    return math.sqrt(total) / sxx


def ptc_u(pts: PtcPoints, ptc: PtcAnalysis) -> PtcU:
    """u(K) and u(R) from the photon-transfer points: each point's variance estimate from its
    frame pairs (``2 sigma^4 / (n_pixels pairs)``), each mean from its frames
    (``sigma^2 / (n_pixels frames)``), the dark reference shared by the flats at its exposure; u(K)
    scaled by the Birge ratio of the fit's residuals (leverage ``x_i^2 / sum x^2``) when their
    chi-square exceeds its :data:`BIRGE_LEVEL` quantile (the points scatter more than modelled)."""
    order, used = ptc.order, ptc.used_in_fit
    n = pts.n_pixels
    var_flat = pts.flat_var_dn2[order]
    frames = pts.flat_n_frames[order]
    um, uv, group = _dark_reference_u(pts, pts.flat_exposure_s[order])
    u_signal = np.sqrt(var_flat / (n * frames) + um)
    x, y = ptc.signal_dn[used], ptc.noise_dn2[used]
    own = 2.0 * var_flat[used] ** 2 / (n * np.maximum(frames[used] // 2, 1))
    u_gain = _origin_slope_u(x, own, uv[used], group[used])
    birge = math.nan
    if x.size >= 2 and math.isfinite(u_gain):
        k = ptc.system_gain_dn_per_e
        leverage = x**2 / float(x @ x)
        z2 = (y - k * x) ** 2 / ((own + uv[used]) * np.maximum(1.0 - leverage, 1e-12))
        birge = math.sqrt(float(z2.sum()) / (x.size - 1))
        if float(z2.sum()) > float(chdtri(x.size - 1, 1.0 - BIRGE_LEVEL)):
            u_gain *= birge
    u_resp = math.nan
    if math.isfinite(ptc.responsivity_dn_per_photon):
        photons = pts.flat_photons[order][used]
        u_resp = _origin_slope_u(photons, var_flat[used] / (n * frames[used]), um[used], group[used])
    return PtcU(gain=u_gain, responsivity=u_resp, signal=u_signal, birge_ratio=birge)


def dark_var0_u(pts: PtcPoints, good: GoodPixelSums | None, dark_frames: int,
                gain: tuple[float, float], current: tuple[float, float], exposure_s: float) -> float:
    """u(sigma^2_y.dark) at exposure 0 (DN^2), following the estimate
    :func:`sensorfleet.emva.rows.metric_rows` / :func:`sensorfleet.emva.metrics.analyse_ptc` made:
    with ``good`` (the spatial dark series has >= 2 frames) the mean temporal variance of its
    ``n`` good pixels (``2 sigma^4 / ((L - 1) n)``) less ``K mu_I.DN t`` (``gain`` and ``current``
    are (value, u)); otherwise from the photon-transfer dark points."""
    if good is not None and dark_frames >= 2:
        n, var, _ = good.moments(bk.Q_DARK_VAR)
        u2 = 2.0 * var**2 / ((dark_frames - 1) * max(n, 1))
        (k, uk), (i, ui) = gain, current
        if math.isfinite(i) and i > 0:
            u2 += exposure_s**2 * (i**2 * uk**2 + k**2 * ui**2)
        return math.sqrt(u2)
    t = pts.dark_exposure_s
    v_var = 2.0 * pts.dark_var_dn2**2 / (pts.n_pixels * np.maximum(pts.dark_n_frames // 2, 1))
    if np.unique(t).size >= 3:
        return math.sqrt(float(line_weights(t, 0.0) ** 2 @ v_var))
    return math.sqrt(float(v_var[np.argmin(t)]))


def ptc_metric_u(ptc: PtcAnalysis, pts: PtcPoints, pu: PtcU, u_var0: float, config: CharacterizationConfig) -> dict[str, float]:
    """``<metric>_u`` of the photon-transfer metrics (section 6) by first-order propagation of
    u(K), u(R), u(sigma^2_y.dark) and u(mu_y.sat - mu_y.dark). The saturation metrics are
    conditional on the chosen saturation point and the linearity error on which points are its
    extremes (docs/metrics.md)."""
    q = config.quantization_variance_dn2
    have_photons = math.isfinite(ptc.responsivity_dn_per_photon)
    sat = ptc.saturation_index
    p_sat = ptc.saturation_photons

    def sat_e(k: float, r: float, y: float) -> float:
        return r * p_sat / k if have_photons else y / k

    def mu_e_min(v: float, k: float) -> float:
        return 0.5 + math.sqrt(0.25 + v / k**2)

    values = {"k": ptc.system_gain_dn_per_e, "r": ptc.responsivity_dn_per_photon if have_photons else 1.0,
              "v": ptc.temporal_dark_noise_dn**2, "y": ptc.saturation_signal_dn}
    u = {"k": pu.gain, "r": pu.responsivity if have_photons else 0.0, "v": u_var0, "y": float(pu.signal[sat])}

    def of(f: Callable[..., float], *names: str) -> float:
        return propagate(f, values, {n: u[n] for n in names})

    read_dn = ptc.read_noise_dn
    out = {
        "gain_k_dn_per_e_u": pu.gain,
        "quantum_efficiency_u": of(lambda k, r, **_: r / k, "k", "r") if have_photons else math.nan,
        "responsivity_dn_per_photon_u": pu.responsivity,
        "temporal_dark_noise_dn_u": sqrt_u(ptc.temporal_dark_noise_dn, u_var0),
        "read_noise_dn_u": sqrt_u(read_dn, u_var0),
        "read_noise_e_u": of(lambda v, k, **_: math.sqrt(max(v - q, 0.0)) / k, "v", "k") if read_dn > 0 else math.nan,
        "saturation_signal_dn_u": u["y"],
        "saturation_photons_u": math.nan,
        "saturation_capacity_e_u": of(lambda k, r, y, **_: sat_e(k, r, y), "k", "r", "y"),
        "snr_max_db_u": of(lambda k, r, y, **_: 10.0 * math.log10(sat_e(k, r, y)), "k", "r", "y"),
        "dynamic_range_db_u": of(lambda k, r, y, v: 20.0 * math.log10(sat_e(k, r, y) / mu_e_min(v, k)), "k", "r", "y", "v"),
        "absolute_sensitivity_threshold_e_u": of(lambda v, k, **_: mu_e_min(v, k), "v", "k"),
        "absolute_sensitivity_threshold_photons_u": (
            of(lambda v, k, r, **_: mu_e_min(v, k) * k / r, "v", "k", "r") if have_photons else math.nan),
    }
    return out | linearity_u(ptc, pts, pu)


def linearity_u(ptc: PtcAnalysis, pts: PtcPoints, pu: PtcU) -> dict[str, float]:
    """u of LE and its extremes (%): the deviations' ``100 u(y_i) / fit_i`` at the points that are
    the extremes (conditional on which points they are; the fit's own uncertainty left out)."""
    nan = {"linearity_error_pct_u": math.nan, "linearity_error_min_pct_u": math.nan,
           "linearity_error_max_pct_u": math.nan}
    sel = ptc.used_in_linearity
    if int(sel.sum()) < 2:
        return nan
    have_photons = math.isfinite(ptc.responsivity_dn_per_photon)
    light = (pts.flat_photons if have_photons else pts.flat_exposure_s)[ptc.order]
    fit, dev = linearity_fit(light[sel], ptc.signal_dn[sel])
    u_dev = 100.0 * pu.signal[sel] / np.abs(fit)
    hi, lo = int(np.argmax(dev)), int(np.argmin(dev))
    return {"linearity_error_pct_u": math.hypot(u_dev[hi], u_dev[lo]) / 2.0,
            "linearity_error_min_pct_u": float(u_dev[lo]), "linearity_error_max_pct_u": float(u_dev[hi])}


def spatial_var_u2(s2: float, sigma2: float, frames: int, n: int) -> float:
    """u^2 of the spatial variance ``s2`` (DN^2) of an L-frame average of ``n`` pixels with the
    temporal noise removed (``var(<y>) - mean(sigma^2) / L``, section 8): the temporal noise
    ``sigma2`` (DN^2) left in the average and in its per-pixel variance estimates."""
    if frames < 2 or n < 2:
        return math.nan
    a = sigma2 / frames
    return (4.0 * max(s2, 0.0) * a + 2.0 * a * a + 2.0 * a * a / (frames - 1)) / n


def _prnu_u(prnu: float, delta: float, s2: float, u2_s2: float, u2_delta: float) -> float:
    """u of ``100 sqrt(s2) / delta`` (%), s2 = s^2_y.50 - s^2_y.dark (DN^2), delta in DN."""
    if not (math.isfinite(prnu) and delta > 0):
        return math.nan
    return math.hypot(100.0 / delta * sqrt_u(math.sqrt(max(s2, 0.0)), math.sqrt(u2_s2)), prnu / delta * math.sqrt(u2_delta))


@dataclass(frozen=True)
class SpatialInputs:
    """What the spatial uncertainties need besides the good-pixel sums: the spatial series'
    frames, the dark points of the dark-current regression (exposures s, frames), the dark
    exposure of the spatial dark series (s) and whether a flat / a shading fit exist."""

    dark_frames: int
    flat_frames: int
    dark_exposure_s: np.ndarray
    dark_n_frames: np.ndarray
    spatial_dark_exposure_s: float
    have_flat: bool
    have_shading: bool


def spatial_metric_u(g: GoodPixelSums, values: Mapping[str, float], gain: float, s: SpatialInputs) -> dict[str, float]:
    """``<metric>_u`` (DN, DN/s, %) of the dark offset, dark current, DSNU, row / column FPN and
    PRNU (``values``: the metric row) from the good-pixel sums: temporal noise only (the maps of
    the sensor's good pixels are measured whole), pixels independent."""
    n_off = int(g.sums[bk.Q_DARK_OFFSET, 0])
    _, dv, _ = g.moments(bk.Q_DARK_VAR)
    current = values["dark_current_dn_per_s"]
    slope = max(current, 0.0) if math.isfinite(current) else 0.0
    sig2 = np.maximum(dv + gain * slope * (s.dark_exposure_s - s.spatial_dark_exposure_s), 0.0) / s.dark_n_frames
    out = {
        "dark_offset_dn_u": math.sqrt(float(line_weights(s.dark_exposure_s, 0.0) ** 2 @ sig2) / max(n_off, 1)),
        "dark_current_dn_per_s_u": (math.sqrt(float(slope_weights(s.dark_exposure_s) ** 2 @ sig2) / max(n_off, 1))
                                    if math.isfinite(current) else math.nan),
    }
    n, mean_dark, var_dark = g.moments(bk.Q_DARK_MEAN)
    frames = s.dark_frames
    s2_dark = var_dark - dv / frames
    u2_dark = spatial_var_u2(s2_dark, dv, frames, n)
    out["dsnu_dn_u"] = sqrt_u(values["dsnu_dn"], math.sqrt(u2_dark))
    out |= _row_col_u(g, values, mean_dark, dv, frames, s2_dark, u2_dark)
    out["prnu_pct_u"] = out["prnu_uncorrected_pct_u"] = math.nan
    if s.have_flat:
        n_f, mean_flat, var_flat = g.moments(bk.Q_FLAT_MEAN)
        _, fv, _ = g.moments(bk.Q_FLAT_VAR)
        _, mean_ref, _ = g.moments(bk.Q_DARK_AT_FLAT)
        delta = mean_flat - mean_ref
        u2_delta = (fv / s.flat_frames + dv / frames) / max(n_f, 1)
        s2_flat = var_flat - fv / s.flat_frames
        u2_flat = spatial_var_u2(s2_flat, fv, s.flat_frames, n_f)
        out["prnu_uncorrected_pct_u"] = _prnu_u(values["prnu_uncorrected_pct"], delta, s2_flat - s2_dark,
                                                u2_flat + u2_dark, u2_delta)
        out["prnu_pct_u"] = out["prnu_uncorrected_pct_u"]
        n_c, _, var_corr = g.moments(bk.Q_CORRECTED)
        if s.have_shading and n_c >= 2:
            s2_corr = var_corr - fv / s.flat_frames
            out["prnu_pct_u"] = _prnu_u(values["prnu_pct"], delta, s2_corr - s2_dark,
                                        spatial_var_u2(s2_corr, fv, s.flat_frames, n_c) + u2_dark, u2_delta)
    return out


def _row_col_u(g: GoodPixelSums, values: Mapping[str, float], mean_dark: float, dv: float, frames: int,
               s2_dark: float, u2_dark: float) -> dict[str, float]:
    """u of the row and column FPN (DN): the temporal noise ``dv / (L N)`` left in each line mean,
    through the variances of the line means and the R4.0 split."""
    m, n = g.plane_shape
    den = m * n - m - n
    if den <= 0 or frames < 1:
        return {"row_fpn_dn_u": math.nan, "column_fpn_dn_u": math.nan}
    s2_cav, s2_rav = line_variances(g, mean_dark, dv, frames)
    v_row, v_col = dv / (frames * n), dv / (frames * m)  # temporal variance of a row / column mean
    u2_rav = (4.0 * max(s2_rav, 0.0) * v_row + 2.0 * v_row**2) / m
    u2_cav = (4.0 * max(s2_cav, 0.0) * v_col + 2.0 * v_col**2) / n
    # s2_row = a s2_rav - b (s2 - s2_cav), s2_col likewise (metrics.row_col_split)
    u2_row = ((m * n - n) / den) ** 2 * u2_rav + (m / den) ** 2 * (u2_dark + u2_cav)
    u2_col = ((m * n - m) / den) ** 2 * u2_cav + (n / den) ** 2 * (u2_dark + u2_rav)
    return {"row_fpn_dn_u": sqrt_u(values["row_fpn_dn"], math.sqrt(u2_row)),
            "column_fpn_dn_u": sqrt_u(values["column_fpn_dn"], math.sqrt(u2_col))}


def in_electrons_u(values: Mapping[str, float], u: Mapping[str, float]) -> dict[str, float]:
    """u of the metrics divided by K (``dsnu_e``, ``dark_current_e_per_s``) from their DN value's
    and K's uncertainties."""
    k, uk = values["gain_k_dn_per_e"], u["gain_k_dn_per_e_u"]
    out = {}
    for dn, e in (("dsnu_dn", "dsnu_e"), ("dark_current_dn_per_s", "dark_current_e_per_s")):
        x, ux = values[dn], u[f"{dn}_u"]
        out[f"{e}_u"] = math.hypot(ux / k, x * uk / k**2)
    return out


def quadratic_mean_u(values: np.ndarray, u: np.ndarray) -> float:
    """u of ``sqrt(mean(values^2))`` for independent values (the CFA sensor's PRNU from its four
    channels')."""
    rms = float(np.sqrt(np.mean(values**2)))
    if rms <= 0:
        return float(np.sqrt(np.mean(u**2)))
    return float(np.sqrt(np.sum((values * u) ** 2))) / (values.size * rms)


def metric_uncertainties(pts: PtcPoints, ptc: PtcAnalysis, good: GoodPixelSums, row: Mapping[str, object],
                         config: CharacterizationConfig, inputs: SpatialInputs) -> dict[str, float]:
    """Every ``<metric>_u`` of one pixel group's metric ``row`` (:func:`sensorfleet.emva.rows.metric_row`)."""
    # a metric the data cannot give is null in the row (one dark exposure: no dark current): NaN here
    values = {k: float(v) if isinstance(v, float | int) else math.nan for k, v in row.items()
              if v is None or isinstance(v, float | int)}
    pu = ptc_u(pts, ptc)
    gain = ptc.system_gain_dn_per_e
    out = {"gain_k_dn_per_e_u": pu.gain} | spatial_metric_u(good, values, gain, inputs)
    u_var0 = dark_var0_u(pts, good, inputs.dark_frames, (gain, pu.gain),
                         (values["dark_current_dn_per_s"], out["dark_current_dn_per_s_u"]), inputs.spatial_dark_exposure_s)
    out |= ptc_metric_u(ptc, pts, pu, u_var0, config)
    return out | in_electrons_u(values, out)


def null_when_unknown(row: Mapping[str, object]) -> dict[str, object]:
    """``row`` with every non-finite ``<metric>_u`` as None: an uncertainty the data cannot give is
    null in the tables (a NaN would read as a failed measurement to the bounds check)."""
    return {k: None if k.endswith("_u") and isinstance(v, float) and not math.isfinite(v) else v
            for k, v in row.items()}
