"""What a simulated module's own maps realise for each EMVA 1288 metric: the quantity a
measurement of that module estimates (docs/metrics.md, "Uncertainty").

The module's parameters are the means and spreads of the *distributions* its maps are drawn
from; a measurement sees one finite map. A spatial metric (DSNU, PRNU, row/column FPN) or a mean
over the pixels (dark offset, dark current, QE) estimates the drawn map over the pixels the
analysis uses (its good pixels; the photon-transfer means use every pixel), not the distribution
parameter. Temporal quantities (gain, read noise) are the parameters themselves: temporal noise
is drawn afresh in every frame.
"""

from __future__ import annotations

import math

import numpy as np

from sensorfleet.emva.metrics import row_col_split
from sensorfleet.synth.params import ModuleParams
from sensorfleet.synth.physics import ModuleMaps, lens_shading

QUANTIZATION_VARIANCE_DN2 = 1.0 / 12.0


def _spread(values: np.ndarray) -> tuple[float, float]:
    """(mean, sample standard deviation) of the finite values (float64)."""
    v = values[np.isfinite(values)].astype(np.float64)
    return float(v.mean()), float(v.std(ddof=1))


def _line_split(image: np.ndarray, good: np.ndarray) -> tuple[float, float]:
    """Row and column FPN of a noise-free (m, n) image over its good pixels (R4.0 split)."""
    m, n = image.shape
    vals = np.where(good, image.astype(np.float64), 0.0)
    mu = float(vals.sum() / good.sum())
    s2 = float(((vals - mu) ** 2)[good].sum() / (good.sum() - 1))
    line_means = [vals.sum(axis=a)[good.any(axis=a)] / good.sum(axis=a)[good.any(axis=a)] for a in (1, 0)]
    s2_rav, s2_cav = (float(np.mean((means - mu) ** 2)) for means in line_means)
    s2_row, s2_col = row_col_split(s2, s2_rav, s2_cav, m, n)
    return math.sqrt(max(s2_row, 0.0)), math.sqrt(max(s2_col, 0.0))


def realised_metrics(params: ModuleParams, maps: ModuleMaps, good: np.ndarray, dark_exposure_s: float,
                     ) -> list[dict[str, float]]:
    """The realised value of every metric the maps define, per pixel group: ``[whole sensor]`` +
    (unless mono) one per CFA site ``2 * (y % 2) + x % 2``, keyed like ``module_stats``.

    ``good``: (H, W) bool, the pixels the analysis kept (``defect_class == 0``);
    ``dark_exposure_s``: exposure of the spatial dark series (s). Units as in the tables.
    """
    k = params.system_gain_dn_per_e
    sigma_r = params.read_noise_e
    response = maps.response_e_per_photon.astype(np.float64)
    response.reshape(-1)[maps.stuck_index] = 0.0  # a stuck pixel's flat - dark is 0
    dark_image = maps.offset_dn.astype(np.float64) + k * maps.dark_current_e_per_s.astype(np.float64) * dark_exposure_s
    corrected = maps.response_e_per_photon / lens_shading(params)
    groups: list[tuple[slice, slice]] = [(slice(None), slice(None))]
    if not params.mono:
        groups += [(slice(s // 2, None, 2), slice(s % 2, None, 2)) for s in range(4)]
    out: list[dict[str, float]] = []
    for rows, cols in groups:
        g = good[rows, cols]
        qe = float(response[rows, cols].mean())
        mu_e_min = 0.5 + math.sqrt(0.25 + sigma_r**2 + QUANTIZATION_VARIANCE_DN2 / k**2)
        _, dsnu = _spread(dark_image[rows, cols][g])
        mean_c, std_c = _spread(corrected[rows, cols][g])
        mean_r, std_r = _spread(maps.response_e_per_photon[rows, cols][g])
        row_fpn, col_fpn = _line_split(dark_image[rows, cols], g)
        current = float(maps.dark_current_e_per_s[rows, cols][g].mean(dtype=np.float64))
        out.append({
            "gain_k_dn_per_e": k, "quantum_efficiency": qe, "responsivity_dn_per_photon": k * qe,
            "dark_offset_dn": float(maps.offset_dn[rows, cols][g].mean(dtype=np.float64)),
            "temporal_dark_noise_dn": math.sqrt(k**2 * sigma_r**2 + QUANTIZATION_VARIANCE_DN2),
            "read_noise_dn": k * sigma_r, "read_noise_e": sigma_r,
            "dark_current_dn_per_s": k * current, "dark_current_e_per_s": current,
            "dsnu_dn": dsnu, "dsnu_e": dsnu / k,
            "prnu_pct": 100.0 * std_c / mean_c, "prnu_uncorrected_pct": 100.0 * std_r / mean_r,
            "row_fpn_dn": row_fpn, "column_fpn_dn": col_fpn,
            "absolute_sensitivity_threshold_e": mu_e_min, "absolute_sensitivity_threshold_photons": mu_e_min / qe,
        })
    if not params.mono:  # a CFA sensor's PRNU is the quadratic mean of its channels'
        for key in ("prnu_pct", "prnu_uncorrected_pct"):
            out[0][key] = float(np.sqrt(np.mean([o[key] ** 2 for o in out[1:]])))
    return out
