"""Lens shading (smooth relative illumination) and blemishes (soft dark spots) on the flat field.

The shading surface S is modelled as ``S = P(u, v) ** -2`` with P a 2-D polynomial of total
degree ``shading_degree`` in normalized coordinates: the natural cos^4 fall-off of a lens,
``1 / (1 + r^2 / f^2)^2``, is then exactly a quadratic P (decentred or anisotropic too), and the
higher terms absorb other smooth shapes. P is fitted to ``median ** -1/2`` of pixel blocks of
the relative response, with two rounds of outlier rejection (blemishes and defects do not pull it). Blemishes are searched on the response divided
by that surface, box-smoothed so that pixel PRNU averages out.

Banded: :class:`ShadingBlocks` takes the response band by band and keeps only the block medians
(O(H x W / block^2)); :meth:`ShadingFit.surface_rows` evaluates any band of the surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sensorfleet.emva.band_kernels import shading_surface_rows


@dataclass(frozen=True)
class ShadingFit:
    """Fitted relative illumination of a flat (1 = its mean over the sensor)."""

    coefficients: np.ndarray  # (degree + 1, degree + 1): c[i, j] of u^i v^j in P (S = P^-2)
    degree: int
    width: int
    height: int
    corner_ratio: float  # mean of the 4 corners / the maximum (optical centre)
    corner_min_ratio: float  # darkest corner / the maximum
    center_x_px: float  # position of the maximum (px)
    center_y_px: float
    center_offset_px: float  # distance of the maximum from the sensor centre (px)

    def _uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (2.0 * x / max(self.width - 1, 1) - 1.0, 2.0 * y / max(self.height - 1, 1) - 1.0)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Surface at pixel coordinates (broadcasting x, y)."""
        xb, yb = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        u, v = self._uv(xb, yb)
        return np.asarray(np.polynomial.polynomial.polyval2d(u, v, self.coefficients)) ** -2.0

    def surface(self) -> np.ndarray:
        """(H, W) float32 surface."""
        return self.surface_rows(0, self.height)

    def surface_rows(self, y0: int, y1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``y0:y1`` of the surface ((y1 - y0, W) float32; the same values whatever the band:
        per row the v-polynomial in float64, the u-sum in float32, then P^-2)."""
        if out is None:
            out = np.empty((y1 - y0, self.width), np.float32)
        shading_surface_rows(np.ascontiguousarray(self.coefficients, np.float64), y0, self.width, self.height, out)
        return out


def _terms(u: np.ndarray, v: np.ndarray, degree: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    pairs = [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]
    return np.stack([u**i * v**j for i, j in pairs], axis=1), pairs


def _solve(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Least squares via the normal equations (tiny systems: avoids LAPACK's thread start-up)."""
    scale = np.sqrt((a * a).sum(axis=0)) + 1e-300
    an = a / scale
    return np.linalg.solve(np.einsum("ij,ik->jk", an, an), np.einsum("ij,i->j", an, z)) / scale


class ShadingBlocks:
    """Block medians of a relative-response map ((H, W), 1 = median) gathered band by band.

    Blocks are ``b x b`` pixels, ``b = min(block_px, H // 4, W // 4)``; pixels not ``valid``
    take ``fill`` (a block median ignores a few of them; np.median (partition) is ~10x faster than
    np.nanmedian); a block with < 50 % valid pixels is left out. Rows below the last whole block
    row are ignored. Bands are added in row order; a block row split between bands waits for the
    next one (at most ``b - 1`` rows are kept).
    """

    def __init__(self, height: int, width: int, block_px: int, fill: float) -> None:
        self.height = height
        self.width = width
        self.b = max(1, min(block_px, height // 4 or 1, width // 4 or 1))
        self.hb, self.wb = height // self.b, width // self.b
        self.fill = np.float32(fill)
        self.med = np.full((self.hb, self.wb), np.nan)
        self.frac_valid = np.zeros((self.hb, self.wb))
        self._next = 0  # next block row
        self._carry: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, response: np.ndarray, valid: np.ndarray, y0: int) -> None:
        """Rows ``y0:y0 + len(response)`` of the response ((h, W) float32) and its valid mask."""
        b, wb = self.b, self.wb
        if self._next >= self.hb:
            return
        if self._carry is not None:
            response = np.concatenate([self._carry[0], response])
            valid = np.concatenate([self._carry[1], valid])
            self._carry = None
        rows = min(response.shape[0] // b, self.hb - self._next)
        if rows:
            r = np.where(valid[: rows * b, : wb * b], response[: rows * b, : wb * b], self.fill).astype(np.float32)
            blocks = r.reshape(rows, b, wb, b).transpose(0, 2, 1, 3).reshape(rows, wb, b * b)
            k = self._next
            self.med[k : k + rows] = np.median(blocks, axis=2)
            self.frac_valid[k : k + rows] = valid[: rows * b, : wb * b].reshape(rows, b, wb, b).mean(axis=(1, 3))
            self._next += rows
        if self._next < self.hb and response.shape[0] > rows * b:
            self._carry = (np.array(response[rows * b :]), np.array(valid[rows * b :]))

    def fit(self, degree: int = 4) -> ShadingFit:
        """Fit the surface to the block medians (see :func:`fit_blocks`)."""
        return fit_blocks(self.med, self.frac_valid, self.height, self.width, self.b, degree)


def fit_blocks(block_median: np.ndarray, frac_valid: np.ndarray, h: int, w: int, b: int, degree: int = 4) -> ShadingFit:
    """Least-squares fit of ``P^-2`` to the block medians ((H // b, W // b)) of an (H, W)
    response; blocks with < 50 % valid pixels are left out, then the fit is redone twice without
    the blocks more than 4 robust sigmas off the surface."""
    hb, wb = block_median.shape
    med = block_median.astype(np.float64)
    med[frac_valid < 0.5] = np.nan
    yc = (np.arange(hb) * b + (b - 1) / 2.0)[:, None] * np.ones((1, wb))
    xc = (np.arange(wb) * b + (b - 1) / 2.0)[None, :] * np.ones((hb, 1))
    ok = np.isfinite(med) & (med > 0)
    u = 2.0 * xc / max(w - 1, 1) - 1.0
    v = 2.0 * yc / max(h - 1, 1) - 1.0
    deg = degree if ok.sum() > 3 * (degree + 1) * (degree + 2) // 2 else min(degree, 2)
    A, pairs = _terms(u[ok], v[ok], deg)
    z = med[ok] ** -0.5
    keep = np.ones(z.size, bool)
    coef = np.zeros(len(pairs))
    for _ in range(3):
        coef = _solve(A[keep], z[keep])
        res = z - A @ coef
        sig = 1.4826 * float(np.median(np.abs(res[keep] - np.median(res[keep])))) or 1e-12
        keep = np.abs(res) <= 4.0 * sig
    c = np.zeros((deg + 1, deg + 1))
    for (i, j), val in zip(pairs, coef, strict=True):
        c[i, j] = val
    provisional = ShadingFit(c, deg, w, h, 1.0, 1.0, 0.0, 0.0, 0.0)
    # normalise to mean 1 over the sensor's pixels: the mean over a coarse grid of cell centres
    # (midpoint rule; a grid through the edges, endpoints included, over-weights the dim corners
    # and left the surface's pixel mean at ~1.001, biasing PRNU low by ~0.1 %)
    ny, nx = min(h, 64), min(w, 64)
    my = (np.arange(ny) + 0.5) * (h / ny) - 0.5
    mx = (np.arange(nx) + 0.5) * (w / nx) - 0.5
    c = c * float(provisional.evaluate(mx[None, :], my[:, None]).mean()) ** 0.5
    gy = np.linspace(0, h - 1, ny)
    gx = np.linspace(0, w - 1, nx)
    fit = ShadingFit(c, deg, w, h, 1.0, 1.0, 0.0, 0.0, 0.0)
    grid = fit.evaluate(gx[None, :], gy[:, None])
    iy, ix = np.unravel_index(int(np.argmax(grid)), grid.shape)
    # refine the maximum on a 1-px grid around the coarse one
    sy = gy[1] - gy[0] if gy.size > 1 else 1.0
    sx = gx[1] - gx[0] if gx.size > 1 else 1.0
    fy = np.arange(max(0.0, gy[iy] - sy), min(h - 1.0, gy[iy] + sy) + 1.0)
    fx = np.arange(max(0.0, gx[ix] - sx), min(w - 1.0, gx[ix] + sx) + 1.0)
    fine = fit.evaluate(fx[None, :], fy[:, None])
    jy, jx = np.unravel_index(int(np.argmax(fine)), fine.shape)
    cx, cy = float(fx[jx]), float(fy[jy])
    centre = float(fit.evaluate(np.array(cx), np.array(cy)))  # the optical centre: the maximum
    corners = fit.evaluate(np.array([0.0, w - 1.0, 0.0, w - 1.0]), np.array([0.0, 0.0, h - 1.0, h - 1.0]))
    return ShadingFit(
        coefficients=c,
        degree=deg,
        width=w,
        height=h,
        corner_ratio=float(corners.mean() / centre),
        corner_min_ratio=float(corners.min() / centre),
        center_x_px=cx,
        center_y_px=cy,
        center_offset_px=math.hypot(cx - (w - 1) / 2.0, cy - (h - 1) / 2.0),
    )


@dataclass(frozen=True)
class Blemish:
    """A soft dark spot: centroid (px), area (px) and depth (1 - smoothed relative response)."""

    x: float
    y: float
    area_px: int
    depth: float
