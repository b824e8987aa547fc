"""Compiled kernels of the banded analysis sweeps (numba), each over one band of rows ``y0:y0+h``.

Every kernel works row by row with per-row partial results that are then added in row order, so
a result does not depend on how the sensor is split into bands nor on the number of threads
(bit-identical for one band or many).
"""

from __future__ import annotations

import numba
import numpy as np

# quantities accumulated by :func:`good_sums` (index into its ``sums`` axis 1)
Q_DARK_MEAN, Q_DARK_VAR, Q_DARK_OFFSET, Q_DARK_CURRENT, Q_FLAT_MEAN, Q_FLAT_VAR, Q_DARK_AT_FLAT, Q_CORRECTED = range(8)
N_QUANTITIES = 8
WHOLE = 4  # group index of the whole sensor (0..3 are the CFA sites 2 * (y % 2) + x % 2)


@numba.njit(cache=True, nogil=True, parallel=True)
def shading_surface_rows(coef: np.ndarray, y0: int, width: int, height: int, out: np.ndarray) -> None:
    """Rows ``y0:y0 + out.shape[0]`` of the shading surface ``S = P(u, v)^-2`` into ``out``
    ((h, W) float32). ``coef[i, j]`` multiplies ``u^i v^j`` with ``u = 2x / (W - 1) - 1``,
    ``v = 2y / (H - 1) - 1``; per row the v-polynomials are summed in float64, the u-sum in
    float32 (the surface is smooth, ~1e-7 relative), then squared and inverted."""
    h = out.shape[0]
    d = coef.shape[0] - 1
    upow = np.empty((width, d + 1), np.float32)
    du = 2.0 / max(width - 1, 1)
    for x in range(width):
        u = du * x - 1.0
        p = 1.0
        for i in range(d + 1):
            upow[x, i] = np.float32(p)
            p *= u
    dv = 2.0 / max(height - 1, 1)
    for r in numba.prange(h):
        v = dv * (y0 + r) - 1.0
        a = np.empty(d + 1, np.float32)
        for i in range(d + 1):
            s = 0.0
            pv = 1.0
            for j in range(d + 1):
                s += coef[i, j] * pv
                pv *= v
            a[i] = np.float32(s)
        row = out[r]
        for x in range(width):
            p32 = np.float32(0.0)
            for i in range(d + 1):
                p32 += a[i] * upow[x, i]
            row[x] = np.float32(1.0) / (p32 * p32)


@numba.njit(cache=True, nogil=True, parallel=True)
def good_sums(y0: int, cls: np.ndarray, dark_mean: np.ndarray, dark_var: np.ndarray, dark_offset: np.ndarray,
              dark_current: np.ndarray, flat_mean: np.ndarray, flat_var: np.ndarray, dark_at_flat: np.ndarray,
              surface: np.ndarray, have_flat: bool, per_site: bool, shifts: np.ndarray, sums: np.ndarray,
              row_acc: np.ndarray, col_acc: np.ndarray, class_counts: np.ndarray) -> None:
    """Add one band's spatial-statistics sums over its good pixels (``cls == 0``).

    ``sums[g, q]`` += (n, sum(v - shift), sum((v - shift)^2)) (float64) for group g (CFA site
    0..3 when ``per_site``, WHOLE = all pixels) and quantity q (Q_* constants; the flat ones only
    when ``have_flat``; Q_CORRECTED is the shading-corrected flat ``d + (f - d) / S``), with
    ``shifts[g, q]`` near the mean for precision. ``row_acc[y, x % 2]`` and ``col_acc[x, y % 2]``
    += (sum, n) of the spatial dark average (row/column means). ``class_counts[site, code]`` +=
    pixels of each class code (all pixels). Maps are (h, W) float32, ``cls`` (h, W) uint8.
    """
    h, w = cls.shape
    ng = sums.shape[0]
    nq = sums.shape[1]
    part = np.zeros((h, ng, nq, 3))
    row_part = np.zeros((h, 2, 2))
    cnt_part = np.zeros((h, 2, class_counts.shape[1]), np.int64)
    for r in numba.prange(h):
        y = y0 + r
        py = y % 2
        acc = part[r]
        vals = np.empty(nq)
        for x in range(w):
            c = cls[r, x]
            cnt_part[r, x % 2, c] += 1
            if c != 0:
                continue
            site = 2 * py + x % 2
            vals[0] = dark_mean[r, x]
            vals[1] = dark_var[r, x]
            vals[2] = dark_offset[r, x]
            vals[3] = dark_current[r, x]
            nv = 4
            if have_flat:
                d = np.float64(dark_at_flat[r, x])
                f = np.float64(flat_mean[r, x])
                vals[4] = f
                vals[5] = flat_var[r, x]
                vals[6] = d
                vals[7] = d + (f - d) / np.float64(surface[r, x])
                nv = 8
            for q in range(nv):
                v = vals[q] - shifts[WHOLE, q]
                acc[WHOLE, q, 0] += 1.0
                acc[WHOLE, q, 1] += v
                acc[WHOLE, q, 2] += v * v
                if per_site:
                    v = vals[q] - shifts[site, q]
                    acc[site, q, 0] += 1.0
                    acc[site, q, 1] += v
                    acc[site, q, 2] += v * v
            m = vals[0]
            row_part[r, x % 2, 0] += m
            row_part[r, x % 2, 1] += 1.0
    # in row order: the sums do not depend on the band split or the thread count
    for r in range(h):
        y = y0 + r
        py = y % 2
        sums += part[r]
        row_acc[y] += row_part[r]
        class_counts[2 * py] += cnt_part[r, 0]
        class_counts[2 * py + 1] += cnt_part[r, 1]
        for x in range(w):
            if cls[r, x] == 0:
                col_acc[x, py, 0] += dark_mean[r, x]
                col_acc[x, py, 1] += 1.0
