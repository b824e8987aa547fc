"""Thresholds and knobs of the characterization, as frozen parameter objects.

Every default is documented in ``docs/metrics.md``; they follow the usual practice of EMVA 1288
(Release 4.0) analyses and camera-module qualification (robust sigmas, relative responses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Defect class codes of the ``defect_class`` map (uint8). 0 = good pixel.
DEFECT_CODES: dict[str, int] = {
    "hot": 1,
    "warm": 2,
    "dead": 3,
    "stuck": 4,
    "noisy": 5,
    "cluster": 6,
    "bad_column": 7,
    "bad_row": 8,
    "blemish": 9,
}
DEFECT_NAMES: dict[int, str] = {code: name for name, code in DEFECT_CODES.items()}


@dataclass(frozen=True)
class DefectThresholds:
    """Per-pixel defect rules (see docs/metrics.md, "Defects").

    Robust sigma = 1.4826 * median absolute deviation of the map over its CFA channel.
    """

    warm_sigma: float = 8.0
    """hot/warm need a dark-signal excess at the longest dark exposure > warm_sigma robust sigmas..."""
    warm_min_excess_dn: float = 3.0
    """... and > this many DN above the median dark signal (significance)."""
    warm_dark_current_factor: float = 10.0
    """warm: per-pixel dark current >= this multiple of the median dark current."""
    hot_dark_current_factor: float = 100.0
    """hot: per-pixel dark current >= this multiple of the median dark current."""
    hot_sigma: float = 50.0
    """hot without a dark current (one dark exposure): excess > hot_sigma robust sigmas."""
    dead_response: float = 0.5
    """dead: relative response (1 = channel median) below this fraction."""
    stuck_noise_fraction: float = 0.05
    """stuck: temporal std in dark and in flat both below this fraction of their medians."""
    stuck_response: float = 0.1
    """stuck: and |flat - dark| mean below this fraction of the median response."""
    noisy_factor: float = 3.0
    """noisy/RTS: temporal dark noise (DN) above noisy_factor x median temporal dark noise."""
    cluster_min: int = 2
    """cluster: a connected (8-neighbour) group of at least this many defective pixels..."""
    cluster_max: int = 9
    """... and at most this many (larger groups are still reported as clusters)."""
    bad_line_fraction: float = 0.5
    """bad column/row: at least this fraction of its pixels are point defects, or ..."""
    bad_line_sigma: float = 3.0
    """... its median (dark signal or response) deviates from the neighbouring lines by more than
    bad_line_sigma x the per-pixel robust spatial sigma of the map."""
    bad_line_window: int = 15
    """width (lines) of the running median the line profile is compared against."""
    blemish_smooth_px: int = 7
    """box size (px) of the smoothing applied to the shading-corrected response before blemish search."""
    blemish_depth: float = 0.02
    """blemish: smoothed relative response at least this far below 1 (2 %)..."""
    blemish_min_area_px: int = 12
    """... over a connected area of at least this many pixels..."""
    blemish_max_area_fraction: float = 0.02
    """... and at most this fraction of the sensor (a larger dip is shading, not a particle)."""


@dataclass(frozen=True)
class CharacterizationConfig:
    """Knobs of :func:`sensorfleet.emva.characterize_frames`.

    ``band_rows``/``max_block_bytes`` bound the memory of the per-pixel pass: a block is at most
    ``max_block_bytes`` of input (frames x band rows x width x 2 bytes).
    """

    band_rows: int = 64
    """rows per band of the per-pixel pass (rounded up to the zarr chunk height)..."""
    min_band_bytes: int = 1024 * 1024
    """... raised so that one frame's band is at least this many bytes (kernel-call overhead)."""
    max_block_bytes: int = 64 * 1024 * 1024
    """most bytes of frames read and reduced at once."""
    map_band_rows: int = 256
    """rows per band (and zarr chunk) of the maps while a maps group is written: the analysis
    sweeps hold a few bands of this height, never the whole sensor."""
    ptc_fit_max_fraction: float = 0.70
    """photon-transfer / responsivity fit uses points with mu_y - mu_y.dark <= 70 % of saturation."""
    ptc_fit_min_fraction: float = 0.0
    """... and >= this fraction of saturation (the standard starts at the darkest point)."""
    linearity_min_fraction: float = 0.05
    """linearity fit range, lower end (5 % of the saturation signal, EMVA 1288 4.0)."""
    linearity_max_fraction: float = 0.95
    """linearity fit range, upper end (95 %)."""
    min_fit_r2: float = 0.99
    """photon-transfer fit quality below this is flagged: the asset check ``ptc_fit_quality`` and
    ``emva.quality.worst_session`` read it (``emva.quality.MIN_FIT_R2``)."""
    min_spatial_frames: int = 16
    """the spatial (DSNU/PRNU) series should have at least this many frames per point."""
    quantization_variance_dn2: float = 1.0 / 12.0
    """sigma_q^2 removed from the dark variance for the read noise in e- (EMVA 1288 4.0)."""
    min_dark_variance_dn2: float = 0.24
    """the dark variance is clamped to at least this (EMVA 1288: sigma_y.dark >= 0.49 DN)."""
    shading_degree: int = 4
    """total degree of the 2-D polynomial fitted to the flat response (lens shading)."""
    shading_block_px: int = 16
    """the shading fit works on block means of this size (px, per CFA plane)."""
    defects: DefectThresholds = field(default_factory=DefectThresholds)
