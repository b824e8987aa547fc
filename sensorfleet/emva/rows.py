"""Table rows of one characterized session: ``module_stats``, ``module_channel_stats``,
``pixel_defects`` and its photon-transfer points, from the banded analysis.

Schemas and units: docs/tables.md; the metrics: docs/metrics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import numpy as np
import polars as pl

from sensorfleet.emva.band_kernels import Q_DARK_VAR
from sensorfleet.emva.config import DEFECT_CODES, DEFECT_NAMES, CharacterizationConfig
from sensorfleet.emva.defects import VALUE_UNITS
from sensorfleet.emva.metrics import (
    PtcAnalysis,
    SpatialStats,
    analyse_ptc,
    ptc_points,
    spatial_stats,
)
from sensorfleet.emva.steps import BandedAnalysis, DefectSummary
from sensorfleet.emva.uncertainty import (
    SpatialInputs,
    metric_uncertainties,
    null_when_unknown,
    quadratic_mean_u,
)
from sensorfleet.manifest import Manifest
from sensorfleet.registry import PIXEL_DEFECTS

Row = dict[str, object]

DEFECT_SCHEMA: dict[str, Any] = {
    name: dtype for name, dtype in PIXEL_DEFECTS.polars_schema().items() if name != PIXEL_DEFECTS.created_time
}
"""Schema of a session's defect rows (the registry's ``pixel_defects`` without ``written_at``,
which the day adds when it gathers the rows)."""
ALL_SITES = [0, 1, 2, 3]


@dataclass(frozen=True)
class SessionCharacterization:
    """Everything characterization produces for one session (rows for the three tables)."""

    module_stats: Row
    channel_stats: list[Row]
    defects: pl.DataFrame
    ptc: pl.DataFrame
    fit_r2: float
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricRows:
    """The EMVA 1288 metrics of the whole sensor and (unless mono) of each CFA channel."""

    rows: list[Row]  # [whole sensor] + ([site 0..3] unless mono)
    whole_ptc: PtcAnalysis  # the whole sensor's photon-transfer analysis


def site_channels(cfa_pattern: str) -> list[str]:
    """Channel name (R, Gr, Gb, B) of each CFA site ``2 * (y % 2) + x % 2``; mono: 'mono' x4."""
    if cfa_pattern == "mono":
        return ["mono"] * 4
    rows = [cfa_pattern[0:2], cfa_pattern[2:4]]
    names = []
    for row in rows:
        for letter in row:
            if letter == "G":
                names.append("Gr" if "R" in row else "Gb")
            else:
                names.append(letter)
    return names


def identity(manifest: Manifest) -> Row:
    """The identity columns of a session's ``module_stats`` row."""
    return {
        "session_id": manifest.session_id,
        "module_id": manifest.module_id,
        "lot_id": manifest.sensor.lot_id,
        "wafer_id": manifest.sensor.wafer_id,
        "die_x": manifest.sensor.die_x,
        "die_y": manifest.sensor.die_y,
        "station_id": manifest.station_id,
        "captured_at": manifest.captured_at.astimezone(UTC),
        "temperature_c": manifest.temperature_c,
        "cfa_pattern": manifest.sensor.cfa_pattern,
        "width_px": manifest.sensor.width,
        "height_px": manifest.sensor.height,
    }


NULL_WITHOUT_DATA = ("dark_current_dn_per_s", "dark_current_e_per_s")
"""Metrics stored as null (not NaN) when the session's data cannot define them: one dark exposure
time gives no dark current."""


def metric_row(ptc: PtcAnalysis, spatial: SpatialStats) -> Row:
    """The EMVA 1288 metric columns of one pixel group (whole sensor or a CFA channel)."""
    gain = ptc.system_gain_dn_per_e
    # one dark exposure time: no dark current, stored as null (not NaN, which the bounds check
    # rightly refuses as a failed computation)
    dark_current = spatial.dark_current_dn_per_s if math.isfinite(spatial.dark_current_dn_per_s) else None
    return {
        "gain_k_dn_per_e": gain,
        "quantum_efficiency": ptc.quantum_efficiency,
        "responsivity_dn_per_photon": ptc.responsivity_dn_per_photon,
        "dark_offset_dn": spatial.dark_offset_dn,
        "temporal_dark_noise_dn": ptc.temporal_dark_noise_dn,
        "read_noise_dn": ptc.read_noise_dn,
        "read_noise_e": ptc.read_noise_e,
        "dark_current_dn_per_s": dark_current,
        "dark_current_e_per_s": dark_current / gain if dark_current is not None else None,
        "dsnu_dn": spatial.dsnu_dn,
        "dsnu_e": spatial.dsnu_dn / gain,
        "prnu_pct": spatial.prnu_pct,
        "prnu_uncorrected_pct": spatial.prnu_uncorrected_pct,
        "row_fpn_dn": spatial.row_fpn_dn,
        "column_fpn_dn": spatial.column_fpn_dn,
        "saturation_signal_dn": ptc.saturation_signal_dn,
        "saturation_photons": ptc.saturation_photons,
        "saturation_capacity_e": ptc.saturation_capacity_e,
        "snr_max_db": ptc.snr_max_db,
        "dynamic_range_db": ptc.dynamic_range_db,
        "absolute_sensitivity_threshold_e": ptc.absolute_sensitivity_threshold_e,
        "absolute_sensitivity_threshold_photons": ptc.absolute_sensitivity_threshold_photons,
        "linearity_error_pct": ptc.linearity_error_pct,
        "linearity_error_min_pct": ptc.linearity_error_min_pct,
        "linearity_error_max_pct": ptc.linearity_error_max_pct,
        "ptc_fit_r2": ptc.fit_r2,
        "ptc_points_in_fit": int(ptc.used_in_fit.sum()),
    }


def metric_rows(analysis: BandedAnalysis, config: CharacterizationConfig, mono: bool) -> MetricRows:
    """PTC and spatial metrics of the whole sensor, then of each CFA channel (unless ``mono``)."""
    result = analysis.result
    dark_spatial = result.points[result.dark_spatial]
    flat_frames = result.points[result.flat_spatial].n_frames if result.flat_spatial is not None else 0
    dark_points = ptc_points(result, ALL_SITES)
    inputs = SpatialInputs(dark_frames=dark_spatial.n_frames, flat_frames=flat_frames,
                           dark_exposure_s=dark_points.dark_exposure_s, dark_n_frames=dark_points.dark_n_frames,
                           spatial_dark_exposure_s=dark_spatial.exposure_s, have_flat=analysis.have_flat,
                           have_shading=analysis.shading is not None)
    rows: list[Row] = []
    analyses: list[PtcAnalysis] = []
    for group, sites in enumerate([ALL_SITES] + ([] if mono else [[0], [1], [2], [3]])):
        points = ptc_points(result, sites)
        ptc = analyse_ptc(points, config)
        good = analysis.good[group]
        spatial = spatial_stats(good, dark_spatial.n_frames, flat_frames, analysis.have_flat,
                                analysis.shading is not None)
        # read noise from the non-defective pixels of the spatial dark series: their temporal
        # variance minus the dark-current shot noise K * mu_I.DN * t (docs/metrics.md)
        n_good = int(good.sums[Q_DARK_VAR, 0])
        dark_var = float(good.shifts[Q_DARK_VAR]) + float(good.sums[Q_DARK_VAR, 1]) / n_good if n_good else math.nan
        if math.isfinite(spatial.dark_current_dn_per_s):
            dark_var -= ptc.system_gain_dn_per_e * max(spatial.dark_current_dn_per_s, 0.0) * dark_spatial.exposure_s
        if dark_spatial.n_frames >= 2:
            ptc = analyse_ptc(points, config, dark_var0_dn2=dark_var)
        row = metric_row(ptc, spatial)
        rows.append(row | metric_uncertainties(points, ptc, good, row, config, inputs))
        analyses.append(ptc)
    if not mono:
        # the whole-sensor flat mixes colours of different QE: PRNU of a CFA sensor is the
        # quadratic mean of its four channels' PRNU (docs/metrics.md)
        for key in ("prnu_pct", "prnu_uncorrected_pct"):
            values = np.array([float(r[key]) for r in rows[1:]])  # type: ignore[arg-type]
            rows[0][key] = float(np.sqrt(np.mean(values**2)))
            u = np.array([float(r[f"{key}_u"]) for r in rows[1:]])  # type: ignore[arg-type]
            rows[0][f"{key}_u"] = quadratic_mean_u(values, u)
    return MetricRows([null_when_unknown(row) for row in rows], analyses[0])


def module_row(analysis: BandedAnalysis, manifest: Manifest, config: CharacterizationConfig, metrics: Row) -> Row:
    """The session's ``module_stats`` row: identity, whole-sensor ``metrics``, defect counts,
    shading, the spatial series and the frame counts."""
    defects, shading, result = analysis.defects, analysis.shading, analysis.result
    dark_spatial = result.points[result.dark_spatial]
    flat_spatial = result.points[result.flat_spatial] if result.flat_spatial is not None else None
    counts = defects.counts()
    module = identity(manifest)
    module.update(metrics)
    for name in DEFECT_CODES:
        if name != "blemish":
            module[f"{name}_pixels"] = counts[name]
    module["defect_pixels_total"] = int(defective_pixels_per_site(defects).sum())
    module["cluster_count"] = defects.cluster_count
    module["largest_cluster_px"] = defects.largest_cluster_px
    module["bad_columns"] = len(defects.bad_columns)
    module["bad_rows"] = len(defects.bad_rows)
    module["blemish_count"] = len(defects.blemishes)
    module["largest_blemish_area_px"] = max((b.area_px for b in defects.blemishes), default=0)
    module["shading_corner_ratio"] = shading.corner_ratio if shading else math.nan
    module["shading_corner_min_ratio"] = shading.corner_min_ratio if shading else math.nan
    module["shading_center_x_px"] = shading.center_x_px if shading else math.nan
    module["shading_center_y_px"] = shading.center_y_px if shading else math.nan
    module["shading_center_offset_px"] = shading.center_offset_px if shading else math.nan
    module["dark_spatial_frames"] = dark_spatial.n_frames
    module["flat_spatial_frames"] = flat_spatial.n_frames if flat_spatial else 0
    module["spatial_frames_ok"] = bool(
        dark_spatial.n_frames >= config.min_spatial_frames
        and flat_spatial is not None and flat_spatial.n_frames >= config.min_spatial_frames
    )
    module["n_frames"] = len(manifest.frames)
    module["n_operating_points"] = manifest.n_operating_points
    return module


def defective_pixels_per_site(defects: DefectSummary) -> np.ndarray:
    """(4,) int64 pixels of classes 1..8 (blemishes excluded) per CFA site."""
    return defects.class_counts[:, 1:9].sum(axis=1)


def channel_rows(defects: DefectSummary, manifest: Manifest, metrics: list[Row]) -> list[Row]:
    """``module_channel_stats`` rows: one per CFA channel (none for mono), from the per-site
    ``metrics`` (whole sensor excluded)."""
    if manifest.sensor.cfa_pattern == "mono":
        return []
    names = site_channels(manifest.sensor.cfa_pattern)
    per_site = defective_pixels_per_site(defects)
    rows: list[Row] = []
    for site, metric in enumerate(metrics):
        row: Row = {
            "session_id": manifest.session_id,
            "module_id": manifest.module_id,
            "captured_at": manifest.captured_at.astimezone(UTC),
            "channel": names[site],
        }
        row.update(metric)
        row["defect_pixels_total"] = int(per_site[site])
        rows.append(row)
    return rows


def defect_rows(defects: DefectSummary, manifest: Manifest) -> pl.DataFrame:
    """``pixel_defects`` rows: one per defective pixel (raster order), then one per blemish."""
    names = site_channels(manifest.sensor.cfa_pattern)
    captured_at = manifest.captured_at.astimezone(UTC)
    ys, xs = defects.y, defects.x
    classes = [DEFECT_NAMES[int(c)] for c in defects.codes]
    channel = np.array(names)[2 * (ys % 2) + xs % 2] if ys.size else np.array([], dtype=str)
    pixels = pl.DataFrame(
        {
            "session_id": [manifest.session_id] * len(xs),
            "module_id": [manifest.module_id] * len(xs),
            "x": xs.astype(np.int32),
            "y": ys.astype(np.int32),
            "channel": channel.tolist(),
            "defect_class": classes,
            "value": defects.values.astype(np.float64),
            "value_unit": [defects.units[c] for c in classes],
            "captured_at": [captured_at] * len(xs),
        },
        schema=DEFECT_SCHEMA,
    )
    if not defects.blemishes:
        return pixels
    bx = [int(round(b.x)) for b in defects.blemishes]
    by = [int(round(b.y)) for b in defects.blemishes]
    blemishes = pl.DataFrame(
        {
            "session_id": [manifest.session_id] * len(bx),
            "module_id": [manifest.module_id] * len(bx),
            "x": bx,
            "y": by,
            "channel": [names[2 * (y % 2) + x % 2] for x, y in zip(bx, by, strict=True)],
            "defect_class": ["blemish"] * len(bx),
            "value": [b.depth for b in defects.blemishes],
            "value_unit": [VALUE_UNITS["blemish"]] * len(bx),
            "captured_at": [captured_at] * len(bx),
        },
        schema=DEFECT_SCHEMA,
    )
    return pl.concat([pixels, blemishes])


def ptc_rows(analysis: BandedAnalysis, whole: PtcAnalysis, session_id: str) -> pl.DataFrame:
    """The whole sensor's photon-transfer points: darks, then flats, with the fit's choices."""
    result = analysis.result
    points = ptc_points(result, ALL_SITES)
    n_dark = points.dark_mean_dn.size
    n_flat = points.flat_mean_dn.size
    used = np.zeros(n_flat, bool)
    used[whole.order] = whole.used_in_fit
    dark_of_flat = np.empty(n_flat)
    dark_of_flat[whole.order] = whole.mean_dark_dn
    first_frames = [result.points[i].indices[0] for i in np.concatenate([points.dark_index, points.flat_index])]
    return pl.DataFrame(
        {
            "session_id": [session_id] * (n_dark + n_flat),
            "kind": ["dark"] * n_dark + ["flat"] * n_flat,
            "exposure_s": np.concatenate([points.dark_exposure_s, points.flat_exposure_s]),
            "photons_per_pixel": np.concatenate([np.zeros(n_dark), points.flat_photons]),
            "n_frames": np.concatenate([points.dark_n_frames, points.flat_n_frames]).astype(np.int64),
            "first_frame": np.array(first_frames, np.int64),
            "mean_dn": np.concatenate([points.dark_mean_dn, points.flat_mean_dn]),
            "mean_dark_dn": np.concatenate([points.dark_mean_dn, dark_of_flat]),
            "temporal_var_dn2": np.concatenate([points.dark_var_dn2, points.flat_var_dn2]),
            "used_in_fit": np.concatenate([np.zeros(n_dark, bool), used]),
        }
    )


def table_rows(analysis: BandedAnalysis, manifest: Manifest, config: CharacterizationConfig) -> SessionCharacterization:
    """The session's rows of every table (no timings) from its banded analysis."""
    metrics = metric_rows(analysis, config, manifest.sensor.cfa_pattern == "mono")
    module = module_row(analysis, manifest, config, metrics.rows[0])
    return SessionCharacterization(
        module_stats=module,
        channel_stats=channel_rows(analysis.defects, manifest, metrics.rows[1:]),
        defects=defect_rows(analysis.defects, manifest),
        ptc=ptc_rows(analysis, metrics.whole_ptc, manifest.session_id),
        fit_r2=float(module["ptc_fit_r2"]),  # type: ignore[arg-type]
    )
