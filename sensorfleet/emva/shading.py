"""Lens shading (smooth relative illumination) and blemishes (soft dark spots) on the flat field.

The shading surface S is modelled as ``S = P(u, v) ** -2`` with P a 2-D polynomial of total
degree ``shading_degree`` in normalized coordinates: the natural cos^4 fall-off of a lens,
``1 / (1 + r^2 / f^2)^2``, is then exactly a quadratic P (decentred or anisotropic too), and the
higher terms absorb other smooth shapes. P is fitted to ``median ** -1/2`` of pixel blocks of
the relative response, with two rounds of outlier rejection (blemishes and defects do not pull it). Blemishes are searched on the response divided
by that surface, box-smoothed so that pixel PRNU averages out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


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
        """(H, W) float32 surface, built separably (rows x columns)."""
        u, v = self._uv(np.arange(self.width, dtype=float), np.arange(self.height, dtype=float))
        d = self.degree
        upow = np.vander(u, d + 1, increasing=True)  # (W, d+1)
        vpow = np.vander(v, d + 1, increasing=True)  # (H, d+1)
        # float32 product: 5 terms of order 1, ~1e-7 relative, and no float64 (H, W) temporary
        p = (vpow @ self.coefficients.T).astype(np.float32) @ upow.T.astype(np.float32)
        # P**-2 as a square and a reciprocal in place (a float64 pow over 12 MP costs ~0.4 s)
        np.multiply(p, p, out=p)
        return np.reciprocal(p, out=p)


def _terms(u: np.ndarray, v: np.ndarray, degree: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    pairs = [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]
    return np.stack([u**i * v**j for i, j in pairs], axis=1), pairs


def _solve(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Least squares via the normal equations (tiny systems: avoids LAPACK's thread start-up)."""
    scale = np.sqrt((a * a).sum(axis=0)) + 1e-300
    an = a / scale
    return np.linalg.solve(np.einsum("ij,ik->jk", an, an), np.einsum("ij,i->j", an, z)) / scale


def fit_shading(response: np.ndarray, valid: np.ndarray, degree: int = 4, block_px: int = 16) -> ShadingFit:
    """Fit the smooth illumination of a relative-response map ((H, W), 1 = median).

    ``valid`` (H, W) bool marks pixels to use (defects excluded). Block medians of
    ``block_px`` x ``block_px`` pixels are fitted in least squares, then refitted twice without the
    blocks more than 4 robust sigmas off the surface.
    """
    h, w = response.shape
    b = max(1, min(block_px, h // 4 or 1, w // 4 or 1))
    hb, wb = h // b, w // b
    # invalid pixels take the response's median: a block median ignores a few of them, and
    # np.median (partition) is ~10x faster than np.nanmedian (masked sort) on 12 MP
    fill = np.float32(np.median(response[valid][:: max(1, int(valid.sum()) // (1 << 18))])) if valid.any() else np.float32(1.0)
    r = np.where(valid, response, fill).astype(np.float32)[: hb * b, : wb * b]
    blocks = r.reshape(hb, b, wb, b).transpose(0, 2, 1, 3).reshape(hb, wb, b * b)
    med = np.median(blocks, axis=2).astype(np.float64)
    frac_valid = valid[: hb * b, : wb * b].reshape(hb, b, wb, b).mean(axis=(1, 3))
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
    # normalise to mean 1 over the sensor, from a coarse grid
    gy = np.linspace(0, h - 1, min(h, 64))
    gx = np.linspace(0, w - 1, min(w, 64))
    grid = provisional.evaluate(gx[None, :], gy[:, None])
    c = c * float(grid.mean()) ** 0.5
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


def find_blemishes(
    corrected: np.ndarray,
    neutral: np.ndarray,
    smooth_px: int,
    depth: float,
    min_area_px: int,
    max_area_fraction: float = 0.02,
) -> tuple[list[Blemish], np.ndarray]:
    """Blemishes on ``corrected - 1`` (the relative response divided by the shading fit, (H, W)),
    with ``neutral`` pixels (defects) set to 0
    before a ``smooth_px`` box filter; regions below ``-depth`` of at least ``min_area_px`` pixels
    and at most ``max_area_fraction`` of the sensor (larger ones are shading the fit missed).

    Returns the blemishes and their (H, W) bool mask.
    """
    resid = corrected.astype(np.float32) - np.float32(1.0)
    resid[neutral | ~np.isfinite(resid)] = 0.0
    smooth = ndimage.uniform_filter(resid, size=smooth_px, mode="nearest")
    low = smooth < -depth
    labels, count = ndimage.label(low, structure=np.ones((3, 3), bool))
    mask = np.zeros(corrected.shape, bool)
    found: list[Blemish] = []
    if count == 0:
        return found, mask
    index = np.arange(1, count + 1)
    areas = ndimage.sum_labels(np.ones_like(smooth), labels, index)
    mins = ndimage.minimum(smooth, labels, index)
    centres = ndimage.center_of_mass(-smooth * low, labels, index)
    keep_labels = []
    for lab, area, mn, (cy, cx) in zip(index, areas, mins, centres, strict=True):
        if min_area_px <= area <= max_area_fraction * smooth.size:
            found.append(Blemish(x=float(cx), y=float(cy), area_px=int(area), depth=float(-mn)))
            keep_labels.append(lab)
    if keep_labels:
        mask = np.isin(labels, keep_labels)
    return found, mask
