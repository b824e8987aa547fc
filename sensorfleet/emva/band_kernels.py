"""Compiled kernels of the banded analysis sweeps (numba), each over one band of rows ``y0:y0+h``.

Every kernel works row by row with per-row partial results that are then added in row order, so
a result does not depend on how the sensor is split into bands (bit-identical for one band or
many). They are serial: a band is a few ms of work, and on a shared 2-core machine a parallel
region of that size measured 2x slower than one thread, with stalls of seconds when the other
core was busy.
"""

from __future__ import annotations

import numba
import numpy as np

# quantities accumulated by :func:`good_sums` (index into its ``sums`` axis 1)
Q_DARK_MEAN, Q_DARK_VAR, Q_DARK_OFFSET, Q_DARK_CURRENT, Q_FLAT_MEAN, Q_FLAT_VAR, Q_DARK_AT_FLAT, Q_CORRECTED = range(8)
N_QUANTITIES = 8
WHOLE = 4  # group index of the whole sensor (0..3 are the CFA sites 2 * (y % 2) + x % 2)


@numba.njit(cache=True, nogil=True)
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
    for r in range(h):
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


@numba.njit(cache=True, nogil=True, inline="always", fastmath={"reassoc", "contract"})
def _row_sums(a: np.ndarray, d: np.ndarray, s: np.ndarray, corrected: bool, cls: np.ndarray, se: float, so: float,
              out: np.ndarray) -> None:
    """Sums over the good pixels (cls == 0) of one row: out = (s1, s2) of the even and of the odd
    columns, each about its own shift; with ``corrected`` the value is ``d + (a - d) / s`` (the
    shading-corrected flat) instead of ``a``. Branch-free (a select per pixel) so that the loop
    vectorizes; the reassociation this allows is fixed per row, so a result does not depend on
    the band split."""
    s1e = s2e = s1o = s2o = 0.0
    w = a.shape[0]
    for k in range(w // 2):
        x = 2 * k
        v0 = np.float64(a[x])
        v1 = np.float64(a[x + 1])
        if corrected:
            d0 = np.float64(d[x])
            d1 = np.float64(d[x + 1])
            v0 = d0 + (v0 - d0) / np.float64(s[x])
            v1 = d1 + (v1 - d1) / np.float64(s[x + 1])
        t0 = v0 - se if cls[x] == 0 else 0.0
        t1 = v1 - so if cls[x + 1] == 0 else 0.0
        s1e += t0
        s2e += t0 * t0
        s1o += t1
        s2o += t1 * t1
    if w & 1 and cls[w - 1] == 0:
        v0 = np.float64(a[w - 1])
        if corrected:
            d0 = np.float64(d[w - 1])
            v0 = d0 + (v0 - d0) / np.float64(s[w - 1])
        t0 = v0 - se
        s1e += t0
        s2e += t0 * t0
    out[0] = s1e
    out[1] = s2e
    out[2] = s1o
    out[3] = s2o


@numba.njit(cache=True, nogil=True)
def good_sums(y0: int, cls: np.ndarray, dark_mean: np.ndarray, dark_var: np.ndarray, dark_offset: np.ndarray,
              dark_current: np.ndarray, flat_mean: np.ndarray, flat_var: np.ndarray, dark_at_flat: np.ndarray,
              surface: np.ndarray, have_flat: bool, shifts: np.ndarray, sums: np.ndarray,
              row_acc: np.ndarray, col_acc: np.ndarray, class_counts: np.ndarray) -> None:
    """Add one band's spatial-statistics sums over its good pixels (``cls == 0``).

    ``sums[g, q]`` += (n, sum(v - shift), sum((v - shift)^2)) (float64) for group g (CFA site
    0..3, WHOLE = all pixels) and quantity q (Q_* constants; the flat ones only when
    ``have_flat``; Q_CORRECTED is the shading-corrected flat ``d + (f - d) / S``), with
    ``shifts[g, q]`` near the mean for precision (the whole sensor's sums are formed from the
    sites' sums). ``row_acc[y, x % 2]`` and ``col_acc[x, y % 2]``
    += (sum, n) of the spatial dark average (row/column means). ``class_counts[site, code]`` +=
    pixels of each class code (all pixels). Maps are (h, W) float32, ``cls`` (h, W) uint8.
    Per row the sums run along the row; rows are then added in order.
    """
    h, w = cls.shape
    nq = N_QUANTITIES if have_flat else 4
    part = np.zeros((h, N_QUANTITIES, 4))
    rowp = np.zeros((h, 4))
    cnt = np.zeros((h, 2, class_counts.shape[1]), np.int64)
    for r in range(h):
        py = (y0 + r) % 2
        c = cls[r]
        for x in range(w):
            if c[x] != 0:
                cnt[r, x & 1, c[x]] += 1
            else:
                cnt[r, x & 1, 0] += 1
        se = 2 * py
        so = 2 * py + 1
        for q in range(nq):
            if q == Q_DARK_MEAN:
                a = dark_mean[r]
            elif q == Q_DARK_VAR:
                a = dark_var[r]
            elif q == Q_DARK_OFFSET:
                a = dark_offset[r]
            elif q == Q_DARK_CURRENT:
                a = dark_current[r]
            elif q == Q_FLAT_MEAN or q == Q_CORRECTED:
                a = flat_mean[r]
            elif q == Q_FLAT_VAR:
                a = flat_var[r]
            else:
                a = dark_at_flat[r]
            _row_sums(a, dark_at_flat[r] if have_flat else a, surface[r] if have_flat else a, q == Q_CORRECTED, c,
                      shifts[se, q], shifts[so, q], part[r, q])
        dm = dark_mean[r]
        s0 = s1 = 0.0
        for x in range(0, w, 2):
            if c[x] == 0:
                s0 += dm[x]
        for x in range(1, w, 2):
            if c[x] == 0:
                s1 += dm[x]
        rowp[r, 0] = s0
        rowp[r, 1] = s1
    # in row order: the sums do not depend on the band split or the thread count
    for r in range(h):
        y = y0 + r
        py = y % 2
        ne = np.float64(cnt[r, 0, 0])
        no = np.float64(cnt[r, 1, 0])
        for q in range(nq):
            p = part[r, q]
            for k, n in ((0, ne), (1, no)):
                g = 2 * py + k
                s1 = p[2 * k]
                s2 = p[2 * k + 1]
                sums[g, q, 0] += n
                sums[g, q, 1] += s1
                sums[g, q, 2] += s2
                # the whole sensor about its own shift: (v - sw) = (v - sg) + (sg - sw)
                dlt = shifts[g, q] - shifts[WHOLE, q]
                sums[WHOLE, q, 0] += n
                sums[WHOLE, q, 1] += s1 + n * dlt
                sums[WHOLE, q, 2] += s2 + 2.0 * dlt * s1 + n * dlt * dlt
        row_acc[y, 0, 0] += rowp[r, 0]
        row_acc[y, 0, 1] += ne
        row_acc[y, 1, 0] += rowp[r, 1]
        row_acc[y, 1, 1] += no
        class_counts[2 * py] += cnt[r, 0]
        class_counts[2 * py + 1] += cnt[r, 1]
        c = cls[r]
        dm = dark_mean[r]
        for x in range(w):
            if c[x] == 0:
                col_acc[x, py, 0] += dm[x]
                col_acc[x, py, 1] += 1.0
