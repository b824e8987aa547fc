"""Slanted edges and edge charts rendered with a known PSF, so the true MTF is known exactly.

A straight edge blurred by an isotropic Gaussian PSF of ``sigma_px`` has the edge spread function
``Phi(d / sigma)`` (d: signed distance from the edge line, Phi the normal CDF). Each pixel
integrates it over its square area: along the pixel axis closer to the edge normal analytically
(the integral of Phi is ``z Phi(z) + phi(z)``), along the other by 8-point Gauss-Legendre
quadrature. The true MTF along the edge normal ``(nx, ny)`` is then the Gaussian's times the
pixel aperture's projected onto the normal (two boxes of widths ``|nx|`` and ``|ny|``):
:func:`true_mtf`.

Used by the accuracy tests, the benchmark and the synthetic fleet's chart captures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def true_mtf(frequency_cy_per_px: np.ndarray | float, sigma_px: float, normal_angle_rad: float) -> np.ndarray:
    """MTF of a Gaussian PSF (``sigma_px``) times the square pixel aperture, along a direction
    at ``normal_angle_rad`` from the x axis."""
    f = np.asarray(frequency_cy_per_px, dtype=np.float64)
    gauss = np.exp(-2.0 * math.pi**2 * sigma_px**2 * f**2)
    return gauss * np.abs(np.sinc(f * math.cos(normal_angle_rad)) * np.sinc(f * math.sin(normal_angle_rad)))


def true_mtf50(sigma_px: float, normal_angle_rad: float = 0.0) -> float:
    """Frequency (cycles/pixel) where :func:`true_mtf` is 0.5, by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(true_mtf(mid, sigma_px, normal_angle_rad)) > 0.5:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _antiderivative(z: np.ndarray) -> np.ndarray:
    """Integral of the normal CDF: z Phi(z) + phi(z)."""
    return z * ndtr(z) + np.exp(-0.5 * z * z) * _INV_SQRT_2PI


def pixel_edge_fraction(d_centre: np.ndarray, nx: float, ny: float, sigma_px: float) -> np.ndarray:
    """Mean over each pixel's square of ``Phi(d / sigma)``, where ``d = d_centre + nx s + ny t``
    for the pixel-relative offsets ``s, t`` in [-1/2, 1/2] (``(nx, ny)`` a unit normal)."""
    a, b = (nx, ny) if abs(nx) >= abs(ny) else (ny, nx)
    out = np.zeros_like(d_centre, dtype=np.float64)
    for node, weight in zip(_GL_NODES, _GL_WEIGHTS, strict=True):
        c = d_centre + b * 0.5 * node
        hi = _antiderivative((c + 0.5 * a) / sigma_px)
        lo = _antiderivative((c - 0.5 * a) / sigma_px)
        out += 0.5 * weight * (hi - lo) * (sigma_px / a)
    return out


def slanted_edge(rows: int, cols: int, angle_deg: float, sigma_px: float, *, dark: float = 0.2,
                 light: float = 1.0, vertical: bool = True, offset_px: float = 0.0) -> np.ndarray:
    """A ``(rows, cols)`` float64 image of one straight edge through the centre (shifted by
    ``offset_px`` along its normal), dark on the left (top when not ``vertical``), tilted by
    ``angle_deg`` from the column (row) axis, blurred by a Gaussian of ``sigma_px`` and
    integrated over each pixel."""
    theta = math.radians(angle_deg)
    nx, ny = math.cos(theta), -math.sin(theta)  # normal of an edge tilted clockwise from vertical
    if not vertical:
        nx, ny = -ny, nx
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    d = (xx - (cols - 1) / 2.0) * nx + (yy - (rows - 1) / 2.0) * ny - offset_px
    return dark + (light - dark) * pixel_edge_fraction(d, nx, ny, sigma_px)


@dataclass(frozen=True)
class ChartSquare:
    """One dark square of an edge chart: centre (px), side (px), rotation (degrees, counter-
    clockwise in the image as shown with row 0 on top) and the PSF sigma of each edge
    (top, right, bottom, left)."""

    centre_x: float
    centre_y: float
    side_px: float
    rotation_deg: float
    edge_sigma_px: tuple[float, float, float, float]

    def edges(self) -> list[tuple[float, float, float, float, float]]:
        """Per edge (top, right, bottom, left): midpoint x, y, outward unit normal nx, ny, sigma."""
        t = math.radians(self.rotation_deg)
        c, s = math.cos(t), math.sin(t)
        out = []
        for (ux, uy), sigma in zip(((0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)), self.edge_sigma_px, strict=True):
            nx, ny = c * ux + s * uy, -s * ux + c * uy  # rotated counter-clockwise on screen (y down)
            out.append((self.centre_x + nx * self.side_px / 2, self.centre_y + ny * self.side_px / 2, nx, ny, sigma))
        return out


def chart_transmission(height: int, width: int, squares: list[ChartSquare], dark_rel: float) -> np.ndarray:
    """``(H, W)`` float32 relative reflectance of an edge chart: 1 on the light background,
    ``dark_rel`` inside the squares, each edge blurred by its own Gaussian PSF and pixel-integrated.
    Within a square's bounding box the dark fraction is the product of the four half-planes'
    (exact away from the corners, where the SFR regions lie)."""
    out = np.ones((height, width), dtype=np.float32)
    for sq in squares:
        margin = 0.75 * sq.side_px + 6.0 * max(sq.edge_sigma_px) + 2.0
        x0, x1 = max(0, int(sq.centre_x - margin)), min(width, int(sq.centre_x + margin) + 1)
        y0, y1 = max(0, int(sq.centre_y - margin)), min(height, int(sq.centre_y + margin) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        inside = np.ones_like(xx)
        for mx, my, nx, ny, sigma in sq.edges():
            d_in = -((xx - mx) * nx + (yy - my) * ny)  # distance inside this edge's half-plane
            inside *= pixel_edge_fraction(d_in, -nx, -ny, sigma)
        out[y0:y1, x0:x1] *= (1.0 - (1.0 - dark_rel) * inside).astype(np.float32)
    return out


@dataclass(frozen=True)
class ChartLayout:
    """A grid of ``grid x grid`` dark squares spanning the field: centres at -1, 0, +1 times
    ``extent_field`` of the half width / half height (the corner squares sit at that field
    fraction, on the diagonals), sides ``side_frac`` of the height, rotated 3 to ~8 degrees."""

    grid: int = 3
    extent_field: float = 0.7
    side_frac: float = 0.15
    first_rotation_deg: float = 3.0
    rotation_step_deg: float = 0.6

    def centres(self, width: int, height: int) -> list[tuple[float, float]]:
        """Square centres (x, y), raster order."""
        ts = np.linspace(-1.0, 1.0, self.grid) if self.grid > 1 else np.zeros(1)
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        return [(cx + tx * self.extent_field * width / 2, cy + ty * self.extent_field * height / 2)
                for ty in ts for tx in ts]

    def squares(self, width: int, height: int, sigma_at: Callable[[float, float], float]) -> list[ChartSquare]:
        """The chart's squares, each edge blurred by ``sigma_at(x, y)`` at its midpoint (px)."""
        out = []
        for k, (x, y) in enumerate(self.centres(width, height)):
            probe = ChartSquare(x, y, self.side_frac * height, self.first_rotation_deg + k * self.rotation_step_deg,
                                (1.0, 1.0, 1.0, 1.0))
            sigmas = tuple(float(sigma_at(mx, my)) for mx, my, _, _, _ in probe.edges())
            out.append(ChartSquare(x, y, probe.side_px, probe.rotation_deg, sigmas))  # type: ignore[arg-type]
        return out
