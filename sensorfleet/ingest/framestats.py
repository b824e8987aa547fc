"""Per-frame summary statistics in one compiled pass over a ``(H, W) uint16`` frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _moments(frame: np.ndarray, saturation_dn: int) -> tuple[int, int, int, int, int]:
    # Exact integer sums. Per row, separate simple loops so that each vectorizes (one fused loop
    # with min/max/count branches ran ~2x slower); a row stays in L1 between the loops. A row's
    # sum of squares fits uint64 (65536 px * 65535**2 < 2**64); the frame totals are uint64.
    total = np.uint64(0)
    total_sq = np.uint64(0)
    lo = np.uint16(65535)
    hi = np.uint16(0)
    n_sat = 0
    h, w = frame.shape
    for y in range(h):
        row = frame[y]
        row_sum = np.uint64(0)
        row_sq = np.uint64(0)
        for x in range(w):
            v = np.uint64(row[x])
            row_sum += v
            row_sq += v * v
        row_lo = np.uint16(65535)
        row_hi = np.uint16(0)
        for x in range(w):
            row_lo = min(row_lo, row[x])
            row_hi = max(row_hi, row[x])
        if row_hi >= saturation_dn:
            for x in range(w):
                if row[x] >= saturation_dn:
                    n_sat += 1
        total += row_sum
        total_sq += row_sq
        lo = min(lo, row_lo)
        hi = max(hi, row_hi)
    return int(total), int(total_sq), int(lo), int(hi), n_sat


@dataclass(frozen=True)
class FrameStats:
    """Summary of one frame, in DN (digital numbers)."""

    mean_dn: float
    std_dn: float
    """population standard deviation over all pixels (spatial + temporal), DN"""
    min_dn: int
    max_dn: int
    saturated_fraction: float
    """fraction of pixels at or above ``2**bit_depth - 1`` DN"""


def frame_stats(frame: np.ndarray, bit_depth: int) -> FrameStats:
    """Mean, std, min, max and saturated fraction of a ``(H, W) uint16`` frame (DN).

    A pixel counts as saturated at the top code ``2**bit_depth - 1`` or above; values above it are
    out of range and are caught by the caller's bit-depth check (``max_dn``).
    """
    if frame.dtype != np.uint16 or frame.ndim != 2:
        raise ValueError(f"frame: expected (H, W) uint16, found {frame.shape} {frame.dtype}")
    n = frame.size
    if n == 0:
        raise ValueError("frame: expected at least one pixel, found an empty array")
    total, total_sq, lo, hi, n_sat = _moments(np.ascontiguousarray(frame), (1 << bit_depth) - 1)
    # exact variance from integer sums: (n*sum(x^2) - sum(x)^2) / n^2
    var = (n * total_sq - total * total) / (n * n)
    return FrameStats(
        mean_dn=total / n,
        std_dn=math.sqrt(max(var, 0.0)),
        min_dn=lo,
        max_dn=hi,
        saturated_fraction=n_sat / n,
    )
