"""Tables written by characterization: ``module_stats``, ``module_channel_stats``,
``pixel_defects`` (sensorfleet.emva). Definitions and choices: docs/metrics.md."""

from __future__ import annotations

from sensorfleet.registry.ingest_tables import (
    CAPTURED_AT,
    CFA_PATTERN,
    DIE_X,
    DIE_Y,
    LOT_ID,
    MODULE_ID,
    SESSION_ID,
    STATION_ID,
    TEMPERATURE_C,
    WAFER_ID,
    WRITTEN_AT,
)
from sensorfleet.registry.model import Bound, Column, Table

_SENS = "§2, §6"  # sensitivity, linearity and noise: model and method
_DARK = "§3, §7"  # dark current
_SPATIAL = "§4, §8"  # spatial non-uniformity and defect pixels
_POSITIVE = Bound(0.0)
_NON_NEGATIVE = Bound(0.0, low_inclusive=True)


def _metric(name: str, description: str, unit: str, symbol: str = "", section: str = "",
            bound: Bound | None = None) -> Column:
    return Column(name, "f64", description, unit, symbol, section, bound, feature=True)


EMVA_METRICS: tuple[Column, ...] = (
    _metric("gain_k_dn_per_e", "overall system gain: slope through the origin of the photon transfer line", "DN/e-", "K", _SENS, Bound(0.0, 100.0)),
    _metric("quantum_efficiency", "quantum efficiency as a fraction (0.5 = 50 %), R / K; null without photon counts", "1 (fraction)", "eta", _SENS,
            Bound(0.0, 1.0, high_inclusive=True)),
    _metric("responsivity_dn_per_photon", "responsivity: slope of mu_y - mu_y.dark over photons", "DN/p", "R", _SENS),
    _metric("dark_offset_dn", "mean dark signal at exposure 0 over non-defective pixels", "DN", "mu_y.dark(0)", _DARK, _NON_NEGATIVE),
    _metric("temporal_dark_noise_dn", "temporal dark noise at exposure 0", "DN", "sigma_y.dark", _SENS, _POSITIVE),
    _metric("read_noise_dn", "read noise without quantization noise, in DN", "DN", "K sigma_d", _SENS, _POSITIVE),
    _metric("read_noise_e", "read noise (temporal dark noise) in electrons", "e-", "sigma_d", _SENS, Bound(0.0, 1000.0)),
    _metric("dark_current_dn_per_s", "mean dark current over non-defective pixels; null with one dark exposure", "DN/s", "mu_I.DN", _DARK),
    # an estimate of a near-zero dark current can dip slightly below zero; more is unphysical
    _metric("dark_current_e_per_s", "mean dark current in electrons", "e-/s", "mu_I", _DARK, Bound(-1.0, 1e6, low_inclusive=True)),
    _metric("dsnu_dn", "dark signal non-uniformity", "DN", "DSNU_1288", _SPATIAL, _NON_NEGATIVE),
    _metric("dsnu_e", "dark signal non-uniformity in electrons", "e-", "DSNU_1288", _SPATIAL, _NON_NEGATIVE),
    _metric("prnu_pct", "photo-response non-uniformity after the smooth shading is divided out (the pixels' own gain spread)", "%",
            "PRNU_1288", _SPATIAL, Bound(0.0, 100.0, low_inclusive=True)),
    _metric("prnu_uncorrected_pct", "PRNU on the raw flat (includes lens shading and illumination)", "%", "PRNU_1288", _SPATIAL),
    _metric("row_fpn_dn", "row fixed-pattern noise of the dark image", "DN", "s_y.row.dark", _SPATIAL),
    _metric("column_fpn_dn", "column fixed-pattern noise of the dark image", "DN", "s_y.col.dark", _SPATIAL),
    _metric("saturation_signal_dn", "saturation signal above dark (point of maximum temporal variance)", "DN", "mu_y.sat - mu_y.dark", _SENS),
    _metric("saturation_photons", "photons at the saturation point", "p", "mu_p.sat", _SENS),
    _metric("saturation_capacity_e", "saturation capacity", "e-", "mu_e.sat", _SENS, _POSITIVE),
    _metric("snr_max_db", "maximum signal-to-noise ratio, 20 log10 sqrt(mu_e.sat)", "dB", "SNR_max", _SENS, _POSITIVE),
    _metric("dynamic_range_db", "dynamic range, 20 log10(mu_e.sat / mu_e.min)", "dB", "DR", _SENS, _POSITIVE),
    _metric("absolute_sensitivity_threshold_e", "absolute sensitivity threshold (SNR = 1)", "e-", "mu_e.min", _SENS, _POSITIVE),
    _metric("absolute_sensitivity_threshold_photons", "absolute sensitivity threshold in photons", "p", "mu_p.min", _SENS),
    _metric("linearity_error_pct", "linearity error (max - min relative deviation) / 2", "%", "LE", _SENS, Bound(-100.0, 100.0)),
    _metric("linearity_error_min_pct", "most negative relative deviation from the linear fit", "%", "LE_min", _SENS),
    _metric("linearity_error_max_pct", "most positive relative deviation from the linear fit", "%", "LE_max", _SENS),
    _metric("ptc_fit_r2", "coefficient of determination of the photon transfer line fit (checked >= min_fit_r2)", "1", "R^2", _SENS,
            Bound(-1e9, 1.0, high_inclusive=True)),
    Column("ptc_points_in_fit", "i64", "photon transfer points used in the K fit", feature=True),
)

UNCERTAIN_METRICS: tuple[str, ...] = tuple(
    c.name for c in EMVA_METRICS if c.dtype == "f64" and c.name != "ptc_fit_r2"
)
"""Metrics with a standard uncertainty column ``<metric>_u`` (the fit's R^2 and point count are
statistics of the fit, not measurements of the module)."""

_NOT_CALIBRATED = {
    "saturation_photons": "always null: the photon count of a level of the plan, chosen, not estimated",
    "saturation_signal_dn": "conditional on the chosen saturation point",
    "saturation_capacity_e": "conditional on the chosen saturation point",
    "snr_max_db": "conditional on the chosen saturation point",
    "dynamic_range_db": "conditional on the chosen saturation point",
    "linearity_error_pct": "conditional on which points are the extremes",
    "linearity_error_min_pct": "conditional on which point is the extreme",
    "linearity_error_max_pct": "conditional on which point is the extreme",
}


def _uncertainty(metric: Column) -> Column:
    note = _NOT_CALIBRATED.get(metric.name, "")
    return Column(f"{metric.name}_u", "f64",
                  f"standard uncertainty of {metric.name} from this session's data"
                  + (f" ({note}; not calibrated)" if note else ""),
                  metric.unit, f"u({metric.symbol})" if metric.symbol else "", metric.section, _NON_NEGATIVE)


EMVA_UNCERTAINTIES: tuple[Column, ...] = tuple(_uncertainty(c) for c in EMVA_METRICS if c.name in UNCERTAIN_METRICS)
"""``<metric>_u`` of every metric in :data:`UNCERTAIN_METRICS`: same unit, null where the data
cannot give it; formulas and calibration in docs/metrics.md ("Uncertainty"). Not model features."""

_DEFECT_CLASSES = ("hot", "warm", "dead", "stuck", "noisy", "cluster", "bad_column", "bad_row")

MODULE_STATS = Table(
    name="module_stats",
    description="One row per characterized session: EMVA 1288 metrics of the whole sensor, defect counts, lens shading.",
    grain="one row per session",
    produced_by="characterization (asset `module_stats`)",
    key=("session_id",),
    columns=(
        SESSION_ID, MODULE_ID, LOT_ID, WAFER_ID, DIE_X, DIE_Y, STATION_ID, CAPTURED_AT, TEMPERATURE_C, CFA_PATTERN,
        Column("width_px", "i64", "pixels per row", "px"),
        Column("height_px", "i64", "rows", "px"),
        *EMVA_METRICS,
        *EMVA_UNCERTAINTIES,
        *(Column(f"{name}_pixels", "i64", f"pixels classified {name.replace('_', ' ')}", "px", section=_SPATIAL,
                 bound=_NON_NEGATIVE, feature=True) for name in _DEFECT_CLASSES),
        Column("defect_pixels_total", "i64", "pixels of any defect class (blemishes excluded)", "px", section=_SPATIAL,
               bound=_NON_NEGATIVE, feature=True),
        Column("cluster_count", "i64", "8-connected groups of >= 2 point defects", feature=True),
        Column("largest_cluster_px", "i64", "pixels in the largest cluster", "px", feature=True),
        Column("bad_columns", "i64", "columns classified bad", feature=True),
        Column("bad_rows", "i64", "rows classified bad", feature=True),
        Column("blemish_count", "i64", "blemishes (shallow dark regions, e.g. particles)", feature=True),
        Column("largest_blemish_area_px", "i64", "area of the largest blemish", "px", feature=True),
        Column("shading_corner_ratio", "f64", "mean shading at the four corners / its maximum (relative illumination)", "1",
               bound=Bound(0.0, 1.5), feature=True),
        Column("shading_corner_min_ratio", "f64", "darkest corner / maximum of the shading", "1", feature=True),
        Column("shading_center_x_px", "f64", "optical centre (shading maximum), x", "px"),
        Column("shading_center_y_px", "f64", "optical centre (shading maximum), y", "px"),
        Column("shading_center_offset_px", "f64", "distance of the optical centre from the sensor centre", "px", feature=True),
        Column("dark_spatial_frames", "i64", "frames of the dark series used for the spatial statistics"),
        Column("flat_spatial_frames", "i64", "frames of the flat series used for the spatial statistics"),
        Column("spatial_frames_ok", "bool", "both spatial series have at least min_spatial_frames frames"),
        Column("n_frames", "i64", "frames in the session"),
        Column("n_operating_points", "i64", "operating points analysed"),
        WRITTEN_AT,
    ),
)

MODULE_CHANNEL_STATS = Table(
    name="module_channel_stats",
    description="One row per (session, CFA channel) of a colour sensor: the EMVA 1288 metrics of that channel alone.",
    grain="one row per session and CFA channel (R, Gr, Gb, B)",
    produced_by="characterization (asset `module_channel_stats`)",
    key=("session_id", "channel"),
    columns=(
        SESSION_ID, MODULE_ID, CAPTURED_AT,
        Column("channel", "str", "CFA channel: R, Gr, Gb or B"),
        *EMVA_METRICS,
        *EMVA_UNCERTAINTIES,
        Column("defect_pixels_total", "i64", "defect pixels of this channel", "px", bound=_NON_NEGATIVE, feature=True),
        WRITTEN_AT,
    ),
)

DEFECT_VALUE_UNITS: dict[str, str] = {
    "hot": "x_median_dark_current (multiple of the median dark current; DN excess with one dark exposure)",
    "warm": "x_median_dark_current",
    "dead": "relative (shading-corrected response, 1 = channel median)",
    "stuck": "DN (the stuck level)",
    "noisy": "DN (temporal dark noise)",
    "cluster": "px (group size)",
    "bad_column": "DN or relative (deviation of the line median), or fraction of defective pixels",
    "bad_row": "DN or relative (deviation of the line median), or fraction of defective pixels",
    "blemish": "relative (depth: 1 - min smoothed response)",
}
"""Unit of ``pixel_defects.value`` per class (the row's ``value_unit`` names it exactly)."""

PIXEL_DEFECTS = Table(
    name="pixel_defects",
    description="One row per defective pixel (raster order), then one per blemish at its centroid.",
    grain="one row per defective pixel or blemish",
    produced_by="characterization (asset `pixel_defects`)",
    key=("session_id", "x", "y", "defect_class"),
    columns=(
        SESSION_ID, MODULE_ID,
        Column("x", "i32", "column of the pixel (blemish: centroid)", "px"),
        Column("y", "i32", "row of the pixel (blemish: centroid)", "px"),
        Column("channel", "str", "CFA channel of the pixel: R, Gr, Gb, B or mono"),
        Column("defect_class", "str", "hot, warm, dead, stuck, noisy, cluster, bad_column, bad_row or blemish"),
        Column("value", "f64", "the class's measure; its unit is in value_unit (per class: docs/tables.md)", "see value_unit"),
        Column("value_unit", "str", "unit of value for this row"),
        CAPTURED_AT, WRITTEN_AT,
    ),
)
