"""Compiled one-pass kernels of the per-pixel statistics (numba, integer accumulators).

A *block* is ``(b, h, W) uint16``: ``b`` frames of one operating point, rows ``y0:y0+h`` of the
sensor. Kernels walk the block row by row (``prange`` over rows, so both cores share one block);
within a row they stream each frame's row once, adding into that row's accumulators, which stay
in the L1/L2 cache while the ``b`` frames pass. Sums are exact (int64): no float rounding, and
the result does not depend on the batch size.

Per-row side outputs split by column parity (index 0 = even x, 1 = odd x), so the caller can
form the four CFA planes from the row parity without a second pass:

- ``row_frame_sums[r, f, p]``: sum of frame ``f``'s pixels in row ``r`` with column parity ``p``.
- ``row_pair_sq[r, k, p]``: sum of ``(y[2k] - y[2k+1])**2`` over the same pixels (frame pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import NamedTuple

import numba
import numpy as np


class SegmentRole(IntEnum):
    """What :func:`reduce_block` keeps of an operating point's frames, beyond the frame and pair
    sums every point gets. The order matters: roles up to SPATIAL_DARK feed the dark-current
    regression, roles from SPATIAL_DARK on get per-pixel mean and variance maps."""

    FRAME_SUMS = 0
    """frame and pair sums only (the photon-transfer points)"""
    DARK_RUN = 1
    """+ per-pixel mean into the dark-current regression (a dark exposure)"""
    SPATIAL_DARK = 2
    """+ per-pixel mean / variance maps and the regression (the spatial dark series)"""
    SPATIAL_FLAT = 3
    """+ per-pixel mean / variance maps (the spatial flat series)"""


# the roles as plain ints: compile-time constants inside the kernels
_FRAME_SUMS = int(SegmentRole.FRAME_SUMS)
_DARK_RUN = int(SegmentRole.DARK_RUN)
_SPATIAL_DARK = int(SegmentRole.SPATIAL_DARK)


@numba.njit(cache=True, nogil=True, parallel=True)
def sum_block_reference(block: np.ndarray) -> np.int64:
    """Sum of every value of a (b, h, W) uint16 block: the memory-read baseline of the benchmark."""
    b, h, w = block.shape
    total = np.int64(0)
    for r in numba.prange(h):
        s = np.int64(0)
        for f in range(b):
            row = block[f, r]
            for x in range(w):
                s += np.int64(row[x])
        total += s
    return total


@numba.njit(cache=True, nogil=True, parallel=True)
def sum_stream_reference(flat: np.ndarray, n_chunks: int) -> np.int64:
    """Sum of a 1-D uint16 array read as ``n_chunks`` long contiguous streams (prange over them):
    the read bandwidth of plain sequential access, beside :func:`sum_block_reference`, which reads
    a stack row by row like the pass does (short 2*W-byte streams, one per frame and row)."""
    n = flat.shape[0]
    step = (n + n_chunks - 1) // n_chunks
    total = np.int64(0)
    for c in numba.prange(n_chunks):
        part = flat[min(n, c * step) : min(n, (c + 1) * step)]  # a view: unit stride, vectorizes
        s = np.int64(0)
        for x in range(part.shape[0]):
            s += np.int64(part[x])
        total += s
    return total


# ---- the one-call band reduction: every operating point of a block, row by row


@numba.njit(cache=True, nogil=True, inline="always")
def _seg_stats_words(words: np.ndarray, idx: np.ndarray, a: int, b: int, r: int, lr: int, fpos: int, ppos: int,
                     row_frame_sums: np.ndarray, row_pair_sq: np.ndarray) -> np.uint32:
    """Frame and pair sums of frames idx[a:b] of row r; returns the bitwise OR of every word."""
    w2 = words.shape[2]
    k = a
    orv = np.uint32(0)
    while k + 2 <= b:
        a0 = words[idx[k], r]
        a1 = words[idx[k + 1], r]
        # row sums fit 32 bits for any width below 65537 words; squared differences need 64
        s0e = np.uint32(0)
        s0o = np.uint32(0)
        s1e = np.uint32(0)
        s1o = np.uint32(0)
        qe = np.uint64(0)
        qo = np.uint64(0)
        for x in range(w2):
            u0 = a0[x]
            u1 = a1[x]
            e0 = np.int32(u0 & 0xFFFF)
            o0 = np.int32(u0 >> 16)
            e1 = np.int32(u1 & 0xFFFF)
            o1 = np.int32(u1 >> 16)
            s0e += u0 & 0xFFFF
            s0o += u0 >> 16
            s1e += u1 & 0xFFFF
            s1o += u1 >> 16
            de = e0 - e1
            do = o0 - o1
            qe += np.uint32(de * de)
            qo += np.uint32(do * do)
            orv |= u0 | u1
        j = k - a
        row_frame_sums[lr, fpos + j, 0] = s0e
        row_frame_sums[lr, fpos + j, 1] = s0o
        row_frame_sums[lr, fpos + j + 1, 0] = s1e
        row_frame_sums[lr, fpos + j + 1, 1] = s1o
        row_pair_sq[lr, ppos + j // 2, 0] = qe
        row_pair_sq[lr, ppos + j // 2, 1] = qo
        k += 2
    if k < b:
        orv |= _single_row(words[idx[k], r], lr, fpos + k - a, row_frame_sums)
    return orv


@numba.njit(cache=True, nogil=True, inline="always")
def _seg_stats_pixels(block: np.ndarray, idx: np.ndarray, a: int, b: int, r: int, lr: int, fpos: int, ppos: int,
                      row_frame_sums: np.ndarray, row_pair_sq: np.ndarray) -> None:
    w = block.shape[2]
    for k in range(a, b):
        row = block[idx[k], r]
        s0 = np.int64(0)
        s1 = np.int64(0)
        for x in range(0, w - 1, 2):
            s0 += np.int64(row[x])
            s1 += np.int64(row[x + 1])
        if w & 1:
            s0 += np.int64(row[w - 1])
        row_frame_sums[lr, fpos + k - a, 0] = s0
        row_frame_sums[lr, fpos + k - a, 1] = s1
    k = a
    while k + 2 <= b:
        p0 = block[idx[k], r]
        p1 = block[idx[k + 1], r]
        q0 = np.int64(0)
        q1 = np.int64(0)
        for x in range(0, w - 1, 2):
            d0 = np.int64(p0[x]) - np.int64(p1[x])
            d1 = np.int64(p0[x + 1]) - np.int64(p1[x + 1])
            q0 += d0 * d0
            q1 += d1 * d1
        if w & 1:
            d0 = np.int64(p0[w - 1]) - np.int64(p1[w - 1])
            q0 += d0 * d0
        row_pair_sq[lr, ppos + (k - a) // 2, 0] = q0
        row_pair_sq[lr, ppos + (k - a) // 2, 1] = q1
        k += 2


@numba.njit(cache=True, nogil=True, inline="always")
def _seg_moments(block: np.ndarray, idx: np.ndarray, a: int, b: int, r: int, acc_s: np.ndarray,
                 acc_q: np.ndarray, squares: bool, narrow: bool) -> None:
    """acc_s += sum_f y (with ``squares`` also acc_q += sum_f y**2) over frames idx[a:b] of row r,
    the accumulators read and written once per 4 frames. A 16-bit square is exact in uint32, four
    of them in uint64; with ``narrow`` (values below 2**15, checked by the caller) four squares sum
    to under 2**32, so they are added in uint32 and widened once. Callers pass ``squares`` and
    ``narrow`` as constants: each inlined copy keeps only its own branch (no test in the loop)."""
    w = block.shape[2]
    k = a
    while k + 4 <= b:
        a0 = block[idx[k], r]
        a1 = block[idx[k + 1], r]
        a2 = block[idx[k + 2], r]
        a3 = block[idx[k + 3], r]
        for x in range(w):
            v0 = np.uint32(a0[x])
            v1 = np.uint32(a1[x])
            v2 = np.uint32(a2[x])
            v3 = np.uint32(a3[x])
            acc_s[x] += np.int64(np.uint32(v0 + v1 + v2 + v3))
            if squares and narrow:
                acc_q[x] += np.int64(np.uint32(v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3))
            elif squares:
                acc_q[x] += np.int64(np.uint64(v0 * v0) + np.uint64(v1 * v1) + np.uint64(v2 * v2)
                                     + np.uint64(v3 * v3))
        k += 4
    while k < b:
        a0 = block[idx[k], r]
        for x in range(w):
            v0 = np.uint32(a0[x])
            acc_s[x] += np.int64(v0)
            if squares:
                acc_q[x] += np.int64(np.uint32(v0 * v0))
        k += 1


# ---- the narrow fast path of reduce_block: 12-bit data in uint32 lanes, checked afterwards
#
# Every sum below is formed in uint32 and exact while all values are < 2**12 (the OR of every word
# read is returned and checked by the caller; wider data is recomputed on the wide path):
# per-row frame sums (< 2**16 words x 2**16), pair squared differences summed over CHUNK_WORDS
# words (256 * 4095**2 < 2**32) then widened, and per-pixel sums and squares over at most
# EPOCH_FRAMES frames (256 * 4095**2 < 2**32). Narrow lanes let LLVM use 8-lane AVX2 integer
# ops (vpmulld, vpaddd) with no widening, so the pass runs at memory speed.

NARROW_MASK = np.uint32(0xF000F000)
"""a word with any of these bits set holds a value >= 2**12 (the narrow path does not apply)"""
CHUNK_WORDS = 256
EPOCH_FRAMES = 256
ROW_CHUNK = 8
"""rows per work item of reduce_block's parallel loop (dynamic scheduling)"""
_LO = np.uint32(0xFFFF)
_SH = np.uint32(16)


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_chunk(a0: np.ndarray, a1: np.ndarray, xc: int, xe: int) -> tuple:
    """(sum e0, sum o0, sum e1, sum o1, sum (e0-e1)^2, sum (o0-o1)^2, OR) over words xc:xe of two
    frame rows (e/o = even/odd column), all uint32."""
    s0e = np.uint32(0)
    s0o = np.uint32(0)
    s1e = np.uint32(0)
    s1o = np.uint32(0)
    qe = np.uint32(0)
    qo = np.uint32(0)
    orv = np.uint32(0)
    for x in range(xc, xe):
        u0 = a0[x]
        u1 = a1[x]
        e0 = u0 & _LO
        e1 = u1 & _LO
        o0 = u0 >> _SH
        o1 = u1 >> _SH
        s0e = np.uint32(s0e + e0)
        s0o = np.uint32(s0o + o0)
        s1e = np.uint32(s1e + e1)
        s1o = np.uint32(s1o + o1)
        de = np.uint32(e0 - e1)
        do = np.uint32(o0 - o1)
        qe = np.uint32(qe + np.uint32(de * de))
        qo = np.uint32(qo + np.uint32(do * do))
        orv = np.uint32(orv | u0 | u1)
    return s0e, s0o, s1e, s1o, qe, qo, orv


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_row(a0: np.ndarray, a1: np.ndarray, lr: int, f: int, p: int, row_frame_sums: np.ndarray,
              row_pair_sq: np.ndarray) -> np.uint32:
    """Frame sums of two frame rows (word views) into row_frame_sums[lr, f:f+2], their pair sum of
    squared differences into row_pair_sq[lr, p]; returns the OR of every word (narrow path)."""
    w2 = a0.shape[0]
    s0e = np.uint32(0)
    s0o = np.uint32(0)
    s1e = np.uint32(0)
    s1o = np.uint32(0)
    qe = np.uint64(0)
    qo = np.uint64(0)
    orv = np.uint32(0)
    for xc in range(0, w2, CHUNK_WORDS):
        t = _pair_chunk(a0, a1, xc, min(xc + CHUNK_WORDS, w2))
        s0e = np.uint32(s0e + t[0])
        s0o = np.uint32(s0o + t[1])
        s1e = np.uint32(s1e + t[2])
        s1o = np.uint32(s1o + t[3])
        qe += np.uint64(t[4])
        qo += np.uint64(t[5])
        orv = np.uint32(orv | t[6])
    row_frame_sums[lr, f, 0] = s0e
    row_frame_sums[lr, f, 1] = s0o
    row_frame_sums[lr, f + 1, 0] = s1e
    row_frame_sums[lr, f + 1, 1] = s1o
    row_pair_sq[lr, p, 0] = qe
    row_pair_sq[lr, p, 1] = qo
    return orv


@numba.njit(cache=True, nogil=True, inline="always")
def _single_row(a0: np.ndarray, lr: int, f: int, row_frame_sums: np.ndarray) -> np.uint32:
    """Frame sums of one frame row (word view) into row_frame_sums[lr, f]; returns the OR."""
    se = np.uint32(0)
    so = np.uint32(0)
    orv = np.uint32(0)
    for x in range(a0.shape[0]):
        u0 = a0[x]
        se = np.uint32(se + (u0 & _LO))
        so = np.uint32(so + (u0 >> _SH))
        orv = np.uint32(orv | u0)
    row_frame_sums[lr, f, 0] = se
    row_frame_sums[lr, f, 1] = so
    return orv


@numba.njit(cache=True, nogil=True)
def _add_word(u: np.uint32, se: np.uint32, so: np.uint32, qe: np.uint32, qo: np.uint32, squares: bool) -> tuple:
    """(se, so, qe, qo) plus the even (low) and odd (high) pixel of word ``u`` (and their squares)."""
    e = u & _LO
    o = u >> _SH
    if squares:
        qe = np.uint32(qe + np.uint32(e * e))
        qo = np.uint32(qo + np.uint32(o * o))
    return np.uint32(se + e), np.uint32(so + o), qe, qo


@numba.njit(cache=True, nogil=True, inline="always")
def _mom_loop(a0: np.ndarray, a1: np.ndarray, a2: np.ndarray, a3: np.ndarray, rows: int, squares: bool,
              pse: np.ndarray, pso: np.ndarray, pqe: np.ndarray, pqo: np.ndarray) -> None:
    """Per-pixel uint32 partial sums (and squares) of the first ``rows`` (1, 2 or 4) of the frame
    rows a0..a3, even/odd columns apart. ``rows`` is a constant at every call; ``squares`` is
    loop-invariant, and the compiler makes one loop with the squares and one without."""
    for x in range(a0.shape[0]):
        se = pse[x]
        so = pso[x]
        qe = pqe[x] if squares else np.uint32(0)
        qo = pqo[x] if squares else np.uint32(0)
        se, so, qe, qo = _add_word(a0[x], se, so, qe, qo, squares)
        if rows >= 2:
            se, so, qe, qo = _add_word(a1[x], se, so, qe, qo, squares)
        if rows >= 4:
            se, so, qe, qo = _add_word(a2[x], se, so, qe, qo, squares)
            se, so, qe, qo = _add_word(a3[x], se, so, qe, qo, squares)
        pse[x] = se
        pso[x] = so
        if squares:
            pqe[x] = qe
            pqo[x] = qo


@numba.njit(cache=True, nogil=True)
def _seg_narrow(words: np.ndarray, idx: np.ndarray, a: int, b: int, r: int, lr: int, ppos: int, part: np.ndarray,
                mode: int, row_frame_sums: np.ndarray, row_pair_sq: np.ndarray) -> np.uint32:
    """Narrow path over frames idx[a:b] (b - a <= EPOCH_FRAMES) of row r, each frame row read from
    memory once: frame and pair sums (positions a.., ppos..), and with ``mode`` 1 the per-pixel
    sums, 2 also the squares, into ``part`` ((4, W/2) uint32: even sums, odd sums, even squares,
    odd squares; overwritten). Returns the OR of every word read (valid iff no NARROW_MASK bit)."""
    squares = mode == 2
    if mode >= 1:
        part[0:2] = 0
        if squares:
            part[2:4] = 0
    orv = np.uint32(0)
    k = a
    while k + 4 <= b:
        a0 = words[idx[k], r]
        a1 = words[idx[k + 1], r]
        a2 = words[idx[k + 2], r]
        a3 = words[idx[k + 3], r]
        p = ppos + (k - a) // 2
        orv |= _pair_row(a0, a1, lr, k, p, row_frame_sums, row_pair_sq)
        orv |= _pair_row(a2, a3, lr, k + 2, p + 1, row_frame_sums, row_pair_sq)
        if mode >= 1:
            _mom_loop(a0, a1, a2, a3, 4, squares, part[0], part[1], part[2], part[3])
        k += 4
    if k + 2 <= b:
        a0 = words[idx[k], r]
        a1 = words[idx[k + 1], r]
        orv |= _pair_row(a0, a1, lr, k, ppos + (k - a) // 2, row_frame_sums, row_pair_sq)
        if mode >= 1:
            _mom_loop(a0, a1, a1, a1, 2, squares, part[0], part[1], part[2], part[3])
        k += 2
    if k < b:
        a0 = words[idx[k], r]
        orv |= _single_row(a0, lr, k, row_frame_sums)
        if mode >= 1:
            _mom_loop(a0, a0, a0, a0, 1, squares, part[0], part[1], part[2], part[3])
    return orv


@numba.njit(cache=True, nogil=True)
def _flush_part(part: np.ndarray, squares: bool, acc_s: np.ndarray, acc_q: np.ndarray) -> None:
    """acc_s (+ acc_q) ((W,) int64, natural column order) += the even/odd uint32 partials."""
    for x in range(part.shape[1]):
        acc_s[2 * x] += np.int64(part[0, x])
        acc_s[2 * x + 1] += np.int64(part[1, x])
    if squares:
        for x in range(part.shape[1]):
            acc_q[2 * x] += np.int64(part[2, x])
            acc_q[2 * x + 1] += np.int64(part[3, x])


@numba.njit(cache=True, nogil=True)
def _finish_part(part: np.ndarray, role: int, n: int, wgt: float, tm: np.ndarray, mm: np.ndarray,
                 out_m: np.ndarray, out_v: np.ndarray) -> None:
    """Finalize a whole point straight from its partials: regression update (role DARK_RUN or
    SPATIAL_DARK) into tm, mm ((W,) float64, split layout: even columns then odd ones) and mean /
    variance maps (SPATIAL_DARK or SPATIAL_FLAT, natural column order). The arithmetic gives the same bits as from int64 sums:
    every integer here is below 2**53, so float64 holds it and the products exactly."""
    w2 = part.shape[1]
    inv_n = 1.0 / n
    if role <= _SPATIAL_DARK:
        # halves as views: an index like w2 + x defeats vectorization (negative-index wraparound)
        for p in range(2):
            ps = part[p]
            tmh = tm[p * w2 : (p + 1) * w2]
            mmh = mm[p * w2 : (p + 1) * w2]
            for x in range(w2):
                m = np.float64(ps[x]) * inv_n
                tmh[x] += wgt * m
                mmh[x] += m
    if role >= _SPATIAL_DARK:
        inv_d = 1.0 / (n * (n - 1)) if n > 1 else 0.0
        fn = np.float64(n)
        for x in range(w2):
            se = np.float64(part[0, x])
            so = np.float64(part[1, x])
            out_m[2 * x] = se * inv_n
            out_m[2 * x + 1] = so * inv_n
            out_v[2 * x] = (fn * np.float64(part[2, x]) - se * se) * inv_d
            out_v[2 * x + 1] = (fn * np.float64(part[3, x]) - so * so) * inv_d


@numba.njit(cache=True, nogil=True)
def _dark_pair_regression(a0: np.ndarray, a1: np.ndarray, n: int, wgt: float, tm: np.ndarray, mm: np.ndarray) -> None:
    """A whole two-frame dark run straight into the regression sums (split layout, as
    :func:`_finish_part`): m = (y0 + y1) / n, tm += wgt * m, mm += m. Exact for any 16-bit data
    (a sum of two values fits uint32), so it needs no narrow check."""
    w2 = a0.shape[0]
    inv_n = 1.0 / n
    tme = tm[:w2]
    tmo = tm[w2:]
    mme = mm[:w2]
    mmo = mm[w2:]
    for x in range(w2):
        u0 = a0[x]
        u1 = a1[x]
        me = np.float64(np.uint32((u0 & _LO) + (u1 & _LO))) * inv_n
        mo = np.float64(np.uint32((u0 >> _SH) + (u1 >> _SH))) * inv_n
        tme[x] += wgt * me
        mme[x] += me
        tmo[x] += wgt * mo
        mmo[x] += mo


@numba.njit(cache=True, nogil=True)
def _split(natural: np.ndarray, out: np.ndarray) -> None:
    """out[:W/2] = natural[0::2], out[W/2:] = natural[1::2] (even W)."""
    w2 = natural.shape[0] // 2
    even = out[:w2]
    odd = out[w2:]
    for x in range(w2):
        even[x] = natural[2 * x]
        odd[x] = natural[2 * x + 1]


@numba.njit(cache=True, nogil=True)
def _merge(split: np.ndarray, natural: np.ndarray) -> None:
    """The inverse of :func:`_split`."""
    w2 = natural.shape[0] // 2
    even = split[:w2]
    odd = split[w2:]
    for x in range(w2):
        natural[2 * x] = even[x]
        natural[2 * x + 1] = odd[x]


@numba.njit(cache=True, nogil=True)
def _seg_frame_sums(block: np.ndarray, words: np.ndarray, use_words: bool, idx: np.ndarray, a: int, b: int, r: int,
                    lr: int, pair0: int, part: np.ndarray, wide: bool, row_frame_sums: np.ndarray,
                    row_pair_sq: np.ndarray) -> bool:
    """Frame and pair sums only of frames idx[a:b] of row r (pairs from ``pair0``): narrow, or
    wide once a value >= 2**12 shows (returned: whether the row is wide now)."""
    if not wide:
        orv = _seg_narrow(words, idx, a, b, r, lr, pair0, part, 0, row_frame_sums, row_pair_sq)
        wide = (orv & NARROW_MASK) != 0
    if wide:
        if use_words:
            _seg_stats_words(words, idx, a, b, r, lr, a, pair0, row_frame_sums, row_pair_sq)
        else:
            _seg_stats_pixels(block, idx, a, b, r, lr, a, pair0, row_frame_sums, row_pair_sq)
    return wide


@numba.njit(cache=True, nogil=True)
def _seg_epochs(block: np.ndarray, words: np.ndarray, use_words: bool, idx: np.ndarray, a: int, b: int, r: int,
                lr: int, pair0: int, role: int, part: np.ndarray, acc_s: np.ndarray, acc_q: np.ndarray, wide: bool,
                direct: bool, row_frame_sums: np.ndarray, row_pair_sq: np.ndarray) -> tuple:
    """Frames idx[a:b] of row r of a segment with per-pixel sums (pairs from ``pair0``), an epoch
    of <= EPOCH_FRAMES frames at a time: narrow partials in ``part`` (kept there when ``direct``,
    else flushed into acc_s / acc_q), or, once a value >= 2**12 shows, the wide int64 path.
    Returns (wide, direct) as they stand after the segment."""
    mode = 2 if role >= _SPATIAL_DARK else 1
    k = a
    while k < b:
        e = min(b, k + EPOCH_FRAMES)
        pp = pair0 + (k - a) // 2
        if not wide:
            orv = _seg_narrow(words, idx, k, e, r, lr, pp, part, mode, row_frame_sums, row_pair_sq)
            if (orv & NARROW_MASK) != 0:
                wide = True
                if direct:  # then k == a: start the int64 sums
                    direct = False
                    acc_s[:] = 0
                    if role >= _SPATIAL_DARK:
                        acc_q[:] = 0
            elif not direct:
                _flush_part(part, role >= _SPATIAL_DARK, acc_s, acc_q)
        if wide:
            orv = np.uint32(0xFFFFFFFF)
            if use_words:
                orv = _seg_stats_words(words, idx, k, e, r, lr, k, pp, row_frame_sums, row_pair_sq)
            else:
                _seg_stats_pixels(block, idx, k, e, r, lr, k, pp, row_frame_sums, row_pair_sq)
            if role >= _SPATIAL_DARK and (orv & 0x80008000) == 0:
                _seg_moments(block, idx, k, e, r, acc_s, acc_q, True, True)
            elif role >= _SPATIAL_DARK:
                _seg_moments(block, idx, k, e, r, acc_s, acc_q, True, False)
            else:
                _seg_moments(block, idx, k, e, r, acc_s, acc_q, False, False)
        k = e
    return wide, direct


@numba.njit(cache=True, nogil=True)
def _finish_sums(acc_s: np.ndarray, acc_q: np.ndarray, role: int, n: int, wgt: float, use_words: bool,
                 tm: np.ndarray, mm: np.ndarray, out_m: np.ndarray, out_v: np.ndarray) -> None:
    """:func:`_finish_part` from int64 sums acc_s, acc_q ((W,), natural column order); tm, mm in
    split layout when ``use_words``."""
    w = acc_s.shape[0]
    w2 = w // 2
    inv_n = 1.0 / n
    if role <= _SPATIAL_DARK:
        for x in range(w):
            m = acc_s[x] * inv_n
            j = (x >> 1) + (x & 1) * w2 if use_words else x
            tm[j] += wgt * m
            mm[j] += m
    if role >= _SPATIAL_DARK:
        inv_d = 1.0 / (n * (n - 1)) if n > 1 else 0.0
        for x in range(w):
            sx = acc_s[x]
            out_m[x] = sx * inv_n
            out_v[x] = (n * acc_q[x] - sx * sx) * inv_d


@numba.njit(cache=True, nogil=True)
def _solve_row(tm: np.ndarray, mm: np.ndarray, use_words: bool, with_slope: bool, inv_stt: float, inv_nd: float,
               tbar: float, off: np.ndarray, cur: np.ndarray) -> None:
    """A row's dark offset and dark current ((W,) float32) from its regression sums (split layout
    when ``use_words``): slope = sum (t - tbar) m / stt, offset = mean m - slope * tbar; without a
    slope the offset is the mean and the current NaN."""
    w = off.shape[0]
    w2 = w // 2
    if use_words:
        tme = tm[:w2]
        tmo = tm[w2:]
        mme = mm[:w2]
        mmo = mm[w2:]
        for x in range(w2):
            if with_slope:
                se = tme[x] * inv_stt
                so = tmo[x] * inv_stt
                cur[2 * x] = se
                cur[2 * x + 1] = so
                off[2 * x] = mme[x] * inv_nd - se * tbar
                off[2 * x + 1] = mmo[x] * inv_nd - so * tbar
            else:
                off[2 * x] = mme[x] * inv_nd
                off[2 * x + 1] = mmo[x] * inv_nd
                cur[2 * x] = np.nan
                cur[2 * x + 1] = np.nan
    else:
        for x in range(w):
            if with_slope:
                slope = tm[x] * inv_stt
                cur[x] = slope
                off[x] = mm[x] * inv_nd - slope * tbar
            else:
                off[x] = mm[x] * inv_nd
                cur[x] = np.nan


class DarkRegression(NamedTuple):
    """The dark-current regression over the dark exposures t_i (constant for a whole pass)."""

    exposure_mean_s: float
    """tbar, the mean dark exposure"""
    exposure_ss_s2: float
    """stt = sum_i (t_i - tbar)^2 (1.0 without a slope, so the kernel never divides by 0)"""
    n_dark: int
    """number of dark points (runs and the spatial dark series)"""
    with_slope: bool
    """>= 2 distinct dark exposures: the dark current map is finite (NaN otherwise)"""


def dark_regression(dark_exposures_s: Sequence[float]) -> DarkRegression:
    """The regression constants of the dark points' exposures (seconds, one per dark point)."""
    t = np.asarray(dark_exposures_s, dtype=np.float64)
    tbar = float(t.mean())
    stt = float(((t - tbar) ** 2).sum())
    with_slope = len(t) >= 2 and stt > 0
    return DarkRegression(tbar, stt if with_slope else 1.0, len(t), with_slope)


class PointSpec(NamedTuple):
    """What the kernel needs of an operating point."""

    n_frames: int
    role: SegmentRole
    weight_s: float
    """t - tbar, its weight in the dark-current regression (any value unless a dark point)"""


class BandOutputs(NamedTuple):
    """A band's (h, W) float32 maps written by :func:`reduce_block` (flat ones may be (1, 1)
    placeholders when there is no spatial flat series)."""

    dark_mean: np.ndarray
    dark_var: np.ndarray
    flat_mean: np.ndarray
    flat_var: np.ndarray
    dark_offset: np.ndarray
    dark_current: np.ndarray


class Segments(NamedTuple):
    """The segments of a kernel call: segment ``s`` = frames ``idx[start[s]:start[s+1]]`` of one
    operating point, its pairs from ``pair[s]`` on (positions in the call's row pair sums)."""

    start: np.ndarray
    """(n + 1,) int64"""
    pair: np.ndarray
    """(n,) int64"""
    role: np.ndarray
    """(n,) int64 :class:`SegmentRole` values"""
    first: np.ndarray
    """(n,) bool: holds the point's first frame"""
    last: np.ndarray
    """(n,) bool: holds the point's last frame"""
    n_frames: np.ndarray
    """(n,) int64: frames of the whole point"""
    weight_s: np.ndarray
    """(n,) float64: the point's t - tbar"""


class BlockPlan(NamedTuple):
    """One :func:`reduce_block` call (the arguments of :func:`_reduce_block`, documented there),
    built by :func:`block_plan`."""

    block: np.ndarray
    words: np.ndarray
    use_words: bool
    r0: int
    idx: np.ndarray
    segments: Segments
    pix_acc: np.ndarray
    reg_acc: np.ndarray
    reg_local: bool
    solve: bool
    regression: DarkRegression
    outputs: BandOutputs
    row_frame_sums: np.ndarray
    row_pair_sq: np.ndarray


def kernel_args(plan: BlockPlan) -> tuple:
    """``plan`` as the positional arguments of :func:`_reduce_block`."""
    reg = plan.regression
    return (plan.block, plan.words, plan.use_words, plan.r0, plan.idx, *plan.segments, plan.pix_acc, plan.reg_acc,
            plan.reg_local, plan.solve, reg.exposure_ss_s2, reg.n_dark, reg.exposure_mean_s, reg.with_slope,
            *plan.outputs, plan.row_frame_sums, plan.row_pair_sq)


_NO_WORDS = np.empty((1, 1, 1), np.uint32)


def as_words(block: np.ndarray) -> np.ndarray | None:
    """A C-contiguous (n, H, W) uint16 array as (n, H, W / 2) uint32 words (two pixels each, the
    low half the even column), or None (odd width, not contiguous, big endian, unaligned)."""
    if block.shape[2] % 2 or not block.flags.c_contiguous or not np.little_endian or block.ctypes.data % 4:
        return None
    try:
        return block.view(np.uint32)
    except ValueError:
        return None


def block_plan(
    block: np.ndarray,
    r0: int,
    idx: np.ndarray,
    segments: Sequence[tuple[int, int, int]],
    points: Sequence[PointSpec],
    regression: DarkRegression,
    band: BandOutputs,
    pix_acc: np.ndarray,
    reg_acc: np.ndarray,
    reg_local: bool,
    solve: bool,
) -> BlockPlan:
    """The plan of one kernel call: ``block`` rows ``r0:r0+h`` (h = the band's map rows), frames
    ``idx`` (int64, positions in ``block``) in segments ``(point, first frame within the point,
    frames)`` of ``points``; the accumulators and flags as :func:`_reduce_block` describes them.
    The per-row frame and pair sums are allocated here (uninitialized)."""
    h = band.dark_mean.shape[0]
    counts = [c for _i, _j, c in segments]
    seg_start = np.zeros(len(segments) + 1, np.int64)
    seg_start[1:] = np.cumsum(counts)
    seg_pair = np.zeros(len(segments), np.int64)
    seg_pair[1:] = np.cumsum([c // 2 for c in counts])[:-1]
    n_pairs = sum(c // 2 for c in counts)
    words = as_words(block)
    segs = Segments(
        seg_start, seg_pair,
        np.array([int(points[i].role) for i, _j, _c in segments], np.int64),
        np.array([j == 0 for _i, j, _c in segments]),
        np.array([j + c == points[i].n_frames for i, j, c in segments]),
        np.array([points[i].n_frames for i, _j, _c in segments], np.int64),
        np.array([points[i].weight_s for i, _j, _c in segments]),
    )
    return BlockPlan(
        block, words if words is not None else _NO_WORDS, words is not None, r0, idx, segs, pix_acc, reg_acc,
        reg_local, solve, regression, band,
        np.empty((h, int(seg_start[-1]), 2), np.int64), np.empty((h, max(n_pairs, 1), 2), np.int64),
    )


def reduce_block(plan: BlockPlan) -> None:
    """:func:`_reduce_block` over ``plan`` with its rows handed out to the threads in chunks of
    ROW_CHUNK as they come free, not split in halves up front: on a shared machine a thread that
    loses its core for a while no longer holds up the whole band. (Set here, outside the compiled
    function: calling numba.set_parallel_chunksize inside would keep it from being cached.)"""
    prev = numba.set_parallel_chunksize(ROW_CHUNK)
    try:
        _reduce_block(*kernel_args(plan))
    finally:
        numba.set_parallel_chunksize(prev)


@numba.njit(cache=True, nogil=True, parallel=True)
def _reduce_block(block: np.ndarray, words: np.ndarray, use_words: bool, r0: int, idx: np.ndarray,
                 seg_start: np.ndarray, seg_pair: np.ndarray, seg_role: np.ndarray, seg_first: np.ndarray,
                 seg_last: np.ndarray, seg_n: np.ndarray, seg_weight: np.ndarray, pix_acc: np.ndarray,
                 reg_acc: np.ndarray, reg_local: bool, solve: bool, stt: float, n_dark: int, tbar: float,
                 with_slope: bool, dark_mean: np.ndarray, dark_var: np.ndarray, flat_mean: np.ndarray,
                 flat_var: np.ndarray, dark_offset: np.ndarray, dark_current: np.ndarray,
                 row_frame_sums: np.ndarray, row_pair_sq: np.ndarray) -> None:
    """Reduce one block of a band in a single read of its frames: for every row, every segment.

    block: C-contiguous (n, Hb, W) uint16 (``words`` its (n, Hb, W/2) uint32 view when
    ``use_words``); rows ``r0:r0+h`` of it are the band's h rows (h = dark_mean rows). Segment
    ``s`` = frames ``idx[seg_start[s]:seg_start[s+1]]`` of one operating point, role 0 (frame and
    pair sums only), 1 (dark run: + per-pixel mean into the dark-current regression), 2 (spatial
    dark: + per-pixel mean/variance maps and the regression) or 3 (spatial flat: + maps): the
    values of :class:`SegmentRole`.
    A segment holding all of its point's frames in this band (first and last) keeps its per-pixel
    sums in a row-local buffer (cache resident, never written to memory); otherwise they live in
    ``pix_acc`` ((2, h, W) int64: sums, sums of squares) across calls (blocks follow the points'
    order, so at most one point is open at a time). Likewise the regression sums
    live in row-local buffers when ``reg_local`` (all dark runs of the band in this call), else in
    ``reg_acc`` ((2, h, W) float64: sum_i (t_i - tbar) m_i, sum_i m_i). ``solve``: write
    dark_offset / dark_current ((h, W) float32) from the regression. Outputs are (h, W) float32.
    row_frame_sums[lr, k, p] (frame k = position in ``idx``) and row_pair_sq[lr, seg_pair[s] + j, p]
    as in the module docstring.
    """
    h = dark_mean.shape[0]
    w = block.shape[2]
    w2 = w // 2
    nseg = seg_role.shape[0]
    inv_stt = 1.0 / stt
    inv_nd = 1.0 / n_dark
    for lr in numba.prange(h):
        r = r0 + lr
        loc_s = np.empty(w, np.int64)
        loc_q = np.empty(w, np.int64)
        part = np.empty((4, w2), np.uint32)
        # regression sums: row-local, in the words path in split layout (even columns, then odd)
        if reg_local:
            tm = np.zeros(w)
            mm = np.zeros(w)
        elif use_words:
            tm = np.empty(w)
            mm = np.empty(w)
            _split(reg_acc[0, lr], tm)
            _split(reg_acc[1, lr], mm)
        else:
            tm = reg_acc[0, lr]
            mm = reg_acc[1, lr]
        # the narrow path until a word of this row shows a value >= 2**12, then the wide one
        wide = not use_words
        for s in range(nseg):
            a = seg_start[s]
            b = seg_start[s + 1]
            role = seg_role[s]
            if role == _FRAME_SUMS:
                wide = _seg_frame_sums(block, words, use_words, idx, a, b, r, lr, seg_pair[s], part, wide,
                                       row_frame_sums, row_pair_sq)
                continue
            whole = seg_first[s] and seg_last[s]
            if use_words and role == _DARK_RUN and whole and b - a == 2:
                # a two-frame dark run (the usual dark-current series): no per-pixel sums at all
                a0 = words[idx[a], r]
                a1 = words[idx[a + 1], r]
                if wide or (_pair_row(a0, a1, lr, a, seg_pair[s], row_frame_sums, row_pair_sq) & NARROW_MASK) != 0:
                    wide = True
                    _seg_stats_words(words, idx, a, b, r, lr, a, seg_pair[s], row_frame_sums, row_pair_sq)
                _dark_pair_regression(a0, a1, seg_n[s], seg_weight[s], tm, mm)
                continue
            # a whole point of <= EPOCH_FRAMES frames is finalized straight from its partials
            direct = whole and b - a <= EPOCH_FRAMES and not wide
            if whole:
                acc_s = loc_s
                acc_q = loc_q
            else:
                acc_s = pix_acc[0, lr]
                acc_q = pix_acc[1, lr]
            if seg_first[s] and not direct:
                acc_s[:] = 0
                if role >= _SPATIAL_DARK:
                    acc_q[:] = 0
            wide, direct = _seg_epochs(block, words, use_words, idx, a, b, r, lr, seg_pair[s], role, part, acc_s,
                                       acc_q, wide, direct, row_frame_sums, row_pair_sq)
            if not seg_last[s]:
                continue
            out_m = dark_mean[lr] if role == _SPATIAL_DARK else flat_mean[lr]
            out_v = dark_var[lr] if role == _SPATIAL_DARK else flat_var[lr]
            if direct:
                _finish_part(part, role, seg_n[s], seg_weight[s], tm, mm, out_m, out_v)
            else:
                _finish_sums(acc_s, acc_q, role, seg_n[s], seg_weight[s], use_words, tm, mm, out_m, out_v)
        if solve:
            _solve_row(tm, mm, use_words, with_slope, inv_stt, inv_nd, tbar, dark_offset[lr], dark_current[lr])
        if use_words and not reg_local:
            _merge(tm, reg_acc[0, lr])
            _merge(mm, reg_acc[1, lr])
