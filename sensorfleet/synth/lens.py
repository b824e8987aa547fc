"""The lens of a synthetic module: a field-varying Gaussian PSF (defocus, tilt, field curvature),
colour shading, the edge-chart capture it renders, and its truth.

PSF: an isotropic Gaussian whose sigma (px) at normalized field position ``(u, v)`` (offsets
from the sensor centre over the half diagonal, so ``hypot(u, v)`` is the field fraction) is
``sqrt(sigma0^2 + (defocus + tilt_u u + tilt_v v + curvature (u^2 + v^2))^2)``: the focus error is
a blur of that many pixels added in quadrature to the in-focus spot. Colour shading: the R and B
responses are multiplied by ``1 - drop * r^2`` (``r`` the field fraction; an IR-cut filter's
cut-off shifts with the angle of incidence), normalized to a mean of 1 over their pixels so that
the module's QE stays the sensor mean. Everything here is only used when a fleet has edge charts.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sensorfleet.optics.render import ChartLayout, ChartSquare, chart_transmission, true_mtf50
from sensorfleet.optics.shading import shading
from sensorfleet.synth.params import LensParams, ModuleParams

if TYPE_CHECKING:
    from sensorfleet.synth.physics import ModuleMaps

#: the chart every station images: 3 x 3 squares of 20 % of the height, corner squares centred at field 0.65
#: (their outer edges near 0.75; every ROI clear of the border at 640 x 480), rotated 4.0-8.8 degrees
#: (a CFA plane of a 3-degree edge this short keeps too few rows after phase trimming), contrast 6:1
CHART_LAYOUT = ChartLayout(grid=3, extent_field=0.65, side_frac=0.2, first_rotation_deg=4.0)
CHART_DARK_REL = 1.0 / 6.0
CHART_SIDES = ("top", "right", "bottom", "left")


def _field(params: ModuleParams, x: float | np.ndarray, y: float | np.ndarray) -> tuple[Any, Any]:
    half_diag = math.hypot(params.width / 2, params.height / 2)
    return (x - (params.width - 1) / 2) / half_diag, (y - (params.height - 1) / 2) / half_diag


def psf_sigma_px(params: ModuleParams, lens: LensParams, x: float, y: float) -> float:
    """Gaussian PSF sigma (px) at sensor position (x, y)."""
    u, v = _field(params, x, y)
    dz = lens.defocus_px + lens.tilt_u_px * u + lens.tilt_v_px * v + lens.curvature_px * (u * u + v * v)
    return math.sqrt(lens.sigma0_px**2 + dz * dz)


def colour_factors(params: ModuleParams, lens: LensParams) -> dict[str, np.ndarray]:
    """Per colour ('R', 'B') the ``(H, W)`` float32 response factor, mean 1 over that colour's
    pixels; empty for mono or without colour shading."""
    if params.mono or (lens.colour_drop_r == 0 and lens.colour_drop_b == 0):
        return {}
    yy, xx = np.mgrid[0:params.height, 0:params.width].astype(np.float64)
    u, v = _field(params, xx, yy)
    r2 = u * u + v * v
    out = {}
    for colour, drop in (("R", lens.colour_drop_r), ("B", lens.colour_drop_b)):
        factor = 1.0 - drop * r2
        out[colour] = (factor / factor.mean()).astype(np.float32)
    return out


def apply_colour_shading(response: np.ndarray, params: ModuleParams, lens: LensParams) -> None:
    """Multiply the R and B pixels of ``response`` (in place) by their colour factors."""
    from sensorfleet.synth.physics import colour_sites

    for colour, factor in colour_factors(params, lens).items():
        for oy, ox in colour_sites(params.cfa_pattern).get(colour, []):
            response[oy::2, ox::2] *= factor[oy::2, ox::2]


def chart_squares(params: ModuleParams, lens: LensParams) -> list[ChartSquare]:
    """The chart's squares as this lens images them (each edge's sigma at its midpoint)."""
    return CHART_LAYOUT.squares(params.width, params.height, lambda x, y: psf_sigma_px(params, lens, x, y))


def chart_response(response: np.ndarray, params: ModuleParams, lens: LensParams) -> np.ndarray:
    """The module's response map (e-/photon) times the blurred chart's reflectance."""
    trans = chart_transmission(params.height, params.width, chart_squares(params, lens), CHART_DARK_REL)
    return response * trans


def edge_truth(params: ModuleParams, lens: LensParams) -> list[dict[str, Any]]:
    """One row per chart edge: square, side, midpoint, field fraction, PSF sigma, true MTF50
    (cycles/pixel along the edge normal: Gaussian x pixel aperture)."""
    rows = []
    half_diag = math.hypot(params.width / 2, params.height / 2)
    for q, square in enumerate(chart_squares(params, lens)):
        for side, (mx, my, nx, ny, sigma) in zip(CHART_SIDES, square.edges(), strict=True):
            field = math.hypot(mx - (params.width - 1) / 2, my - (params.height - 1) / 2) / half_diag
            rows.append({"square": q, "side": side, "x_px": mx, "y_px": my, "field_frac": field, "sigma_px": sigma,
                         "mtf50_true_cy_per_px": true_mtf50(sigma, math.atan2(ny, nx))})
    return rows


def module_truth(params: ModuleParams, lens: LensParams) -> dict[str, float]:
    """The module's true optics: MTF50 at the centre and at the four corner squares' centres
    (minimum), the opposite-corner difference, and the colour shading and relative illumination
    of the noise-free response by the measurement's own definition."""
    cx, cy = (params.width - 1) / 2, (params.height - 1) / 2
    centres = CHART_LAYOUT.centres(params.width, params.height)
    corners = [true_mtf50(psf_sigma_px(params, lens, x, y)) for x, y in (centres[0], centres[2], centres[6], centres[8])]
    from sensorfleet.synth.physics import cfa_colour_index, lens_shading

    qe = np.array([params.quantum_efficiency(c) for c in "RGB"], dtype=np.float32)
    response = lens_shading(params) * qe[cfa_colour_index(params.cfa_pattern, params.height, params.width)]
    apply_colour_shading(response, params, lens)
    sh = shading(response, params.cfa_pattern)
    return {
        "mtf50_center_true_cy_per_px": true_mtf50(psf_sigma_px(params, lens, cx, cy)),
        "mtf50_corner_min_true_cy_per_px": min(corners),
        "mtf50_tilt_true_cy_per_px": max(abs(corners[0] - corners[3]), abs(corners[1] - corners[2])),
        "colour_shading_r_true_pct": sh.colour_shading_r_pct,
        "colour_shading_b_true_pct": sh.colour_shading_b_pct,
        "relative_illumination_g_true": sh.relative_illumination.get("G", sh.relative_illumination.get("mono", math.nan)),
    }


def chart_maps(params: ModuleParams, maps: ModuleMaps) -> ModuleMaps:
    """The module's maps for an ``edge_chart`` frame: the response times the blurred chart (a
    module without a lens model images it with the nominal in-focus lens)."""
    lens = params.lens or LensParams()
    return replace(maps, response_e_per_photon=chart_response(maps.response_e_per_photon, params, lens))


__all__ = ["CHART_LAYOUT", "LensParams", "apply_colour_shading", "chart_maps", "chart_squares", "edge_truth",
           "module_truth", "psf_sigma_px"]
