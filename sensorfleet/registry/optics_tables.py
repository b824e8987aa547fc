"""Tables written by the optics layer: ``sfr`` (one row per chart edge and channel) and
``module_optics`` (one row per session) (sensorfleet.optics). Definitions: docs/metrics.md,
"Slanted-edge SFR" and "Relative illumination and colour shading"."""

from __future__ import annotations

from sensorfleet.registry.ingest_tables import (
    CAPTURED_AT,
    CFA_PATTERN,
    LOT_ID,
    MODULE_ID,
    SESSION_ID,
    STATION_ID,
    WAFER_ID,
    WRITTEN_AT,
)
from sensorfleet.registry.model import Bound, Column, Table

ISO = "ISO 12233:2023"
MTF50_BOUND = Bound(0.0, 0.5, low_inclusive=True, high_inclusive=True)
"""MTF50 of a sampled system: between 0 and the Nyquist frequency, 0.5 cycles/pixel."""
_MTF = Bound(0.0, 1.5, low_inclusive=True)
_RATIO = Bound(0.0, 2.0)
_PCT = Bound(0.0, 100.0, low_inclusive=True)


def _sharpness(name: str, description: str, bound: Bound = MTF50_BOUND) -> Column:
    return Column(name, "f64", description, "cy/px", section=ISO, bound=bound, feature=True)


SFR = Table(
    name="sfr",
    description="One row per edge of the session's edge chart and channel (luminance L and R, Gr, Gb, B; mono once): "
    "the e-SFR summary, with a quality flag and its reason. The curves: maps/<day>/sfr_curves.parquet (one file per day).",
    grain="one row per (session, edge, channel)",
    produced_by="optics (asset `sfr`)",
    key=("session_id", "edge_id", "channel"),
    columns=(
        SESSION_ID, MODULE_ID, CAPTURED_AT,
        Column("edge_id", "i64", "edge number: 4 x square + side (top, right, bottom, left), the ROI's index for a "
               "manifest ROI list, -1 for a chart in which nothing was found"),
        Column("square", "i64", "square number (raster order of centres); -1 for a manifest ROI"),
        Column("side", "str", "top, right, bottom or left of its square; roi for a manifest ROI"),
        Column("channel", "str", "L (luminance estimate), R, Gr, Gb, B, or mono"),
        Column("x_px", "f64", "ROI centre, column", "px"),
        Column("y_px", "f64", "ROI centre, row", "px"),
        Column("roi_x0", "i64", "ROI first column", "px"),
        Column("roi_y0", "i64", "ROI first row", "px"),
        Column("roi_width", "i64", "ROI columns", "px"),
        Column("roi_height", "i64", "ROI rows", "px"),
        Column("field_frac", "f64", "distance of the ROI centre from the sensor centre over the half diagonal", "1",
               bound=Bound(0.0, 1.0, True, True)),
        Column("orientation", "str", "vertical or horizontal: the direction the edge runs"),
        Column("direction", "str", "tangential (edge normal along the radius) or sagittal"),
        Column("angle_deg", "f64", "edge angle from the pixel axis it runs along", "deg", section=ISO),
        _sharpness("mtf50_cy_per_px", "MTF50: frequency where the SFR falls to 0.5, cycles per sensor pixel"),
        Column("mtf_nyquist4", "f64", "SFR at Nyquist/4 (0.125 cycles/pixel)", "1", section=ISO, bound=_MTF),
        Column("mtf_nyquist2", "f64", "SFR at Nyquist/2 (0.25 cycles/pixel)", "1", section=ISO, bound=_MTF),
        Column("edge_snr", "f64", "edge contrast over the residual noise rms on the plateaus", "1", bound=Bound(0.0)),
        Column("quality", "str", "ok, near_border, too_short, clipped, not_found or bad_angle; values are null unless ok"),
        Column("reason", "str", "what is wrong, naming the frames where the whole chart failed; empty when ok"),
        Column("chart_frames", "str", "the edge_chart frame files averaged for this chart"),
        WRITTEN_AT,
    ),
)

MODULE_OPTICS = Table(
    name="module_optics",
    description="One row per session: sharpness across the field from the edge chart (luminance or mono edges), "
    "relative illumination and colour shading from the flats.",
    grain="one row per session",
    produced_by="optics (asset `module_optics`)",
    key=("session_id",),
    columns=(
        SESSION_ID, MODULE_ID, LOT_ID, WAFER_ID, STATION_ID, CAPTURED_AT, CFA_PATTERN,
        Column("chart_frames", "i64", "edge_chart frames of the session (averaged); 0: no chart, no sharpness"),
        Column("edges_found", "i64", "edges found on the chart (each counted once)"),
        Column("edges_ok", "i64", "edges measured (quality ok)"),
        _sharpness("mtf50_center_cy_per_px", "median MTF50 of the edges within field 0.2"),
        _sharpness("mtf50_corner_min_cy_per_px", "worst corner: minimum over the four quadrants of the median MTF50 "
                   "of the edges at field 0.65-0.85"),
        *(_sharpness(f"mtf50_corner_{q}_cy_per_px", f"median MTF50 of the {q.replace('_', '-')} corner's edges "
                     "(field 0.65-0.85)") for q in ("top_left", "top_right", "bottom_left", "bottom_right")),
        Column("field_uniformity", "f64", "worst corner MTF50 over the centre MTF50 (1 = uniform)", "1",
               bound=Bound(0.0, 3.0, low_inclusive=True), feature=True),
        _sharpness("mtf50_tilt_cy_per_px", "tilt estimate: the larger MTF50 difference between opposite corners"),
        *(Column(f"relative_illumination_{c}", "f64", f"{c.upper()} channel: mean of the corner blocks over the centre "
                 "of the dark-subtracted flat (mono sensors: relative_illumination_g)", "1", bound=_RATIO,
                 feature=True) for c in ("r", "g", "b")),
        Column("colour_shading_r_pct", "f64", "max deviation of R/G from its value at the centre (16 x 16 blocks)", "%",
               bound=_PCT, feature=True),
        Column("colour_shading_b_pct", "f64", "max deviation of B/G from its value at the centre (16 x 16 blocks)", "%",
               bound=_PCT, feature=True),
        WRITTEN_AT,
    ),
)
