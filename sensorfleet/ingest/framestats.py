"""Per-frame summary statistics in one compiled pass over a ``(H, W) uint16`` frame, optionally
fused with the decoding of a MIPI packed frame (one pass over the file bytes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from sensorfleet.rawio import decode_frame, expected_nbytes, row_nbytes
from sensorfleet.rawio_kernels import unpack_raw10, unpack_raw12, unpack_raw14

_FUSED = {"raw10_mipi": 10, "raw12_mipi": 12, "raw14_mipi": 14}


@numba.njit(cache=True, nogil=True)
def _row_moments(row: np.ndarray, saturation_dn: int) -> tuple[np.uint64, np.uint64, np.uint16, np.uint16, int]:
    # Exact integer sums of one row. Separate simple loops so that each vectorizes (one fused loop
    # with min/max/count branches ran ~2x slower); the row stays in L1 between the loops. A row's
    # sum of squares fits uint64 (65536 px * 65535**2 < 2**64).
    w = row.shape[0]
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
    n_sat = 0
    if row_hi >= saturation_dn:
        for x in range(w):
            if row[x] >= saturation_dn:
                n_sat += 1
    return row_sum, row_sq, row_lo, row_hi, n_sat


@numba.njit(cache=True, nogil=True)
def _unpack_moments(buf: np.ndarray, out: np.ndarray, row_bytes: int, fmt: int,
                    saturation_dn: int) -> tuple[int, int, int, int, int]:
    # Decode and summarize in one pass: each row is unpacked with rawio's kernel (fmt 10, 12 or
    # 14; fmt 0: ``out`` already holds the frame) and its moments taken while it is still in L1,
    # so the frame is not read back from memory a second time.
    total = np.uint64(0)
    total_sq = np.uint64(0)
    lo = np.uint16(65535)
    hi = np.uint16(0)
    n_sat = 0
    for y in range(out.shape[0]):
        if fmt != 0:
            src = buf[y * row_bytes:(y + 1) * row_bytes]
            dst = out[y:y + 1]
            if fmt == 10:
                unpack_raw10(src, dst, row_bytes)
            elif fmt == 12:
                unpack_raw12(src, dst, row_bytes)
            else:
                unpack_raw14(src, dst, row_bytes)
        s, sq, rlo, rhi, ns = _row_moments(out[y], saturation_dn)
        total += s
        total_sq += sq
        lo = min(lo, rlo)
        hi = max(hi, rhi)
        n_sat += ns
    return int(total), int(total_sq), int(lo), int(hi), n_sat


_NO_BYTES = np.empty(0, np.uint8)


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


def _summary(n: int, total: int, total_sq: int, lo: int, hi: int, n_sat: int) -> FrameStats:
    # exact variance from integer sums: (n*sum(x^2) - sum(x)^2) / n^2
    var = (n * total_sq - total * total) / (n * n)
    return FrameStats(
        mean_dn=total / n,
        std_dn=math.sqrt(max(var, 0.0)),
        min_dn=lo,
        max_dn=hi,
        saturated_fraction=n_sat / n,
    )


def frame_stats(frame: np.ndarray, bit_depth: int) -> FrameStats:
    """Mean, std, min, max and saturated fraction of a ``(H, W) uint16`` frame (DN).

    A pixel counts as saturated at the top code ``2**bit_depth - 1`` or above; values above it are
    out of range and are caught by the caller's bit-depth check (``max_dn``).
    """
    if frame.dtype != np.uint16 or frame.ndim != 2:
        raise ValueError(f"frame: expected (H, W) uint16, found {frame.shape} {frame.dtype}")
    if frame.size == 0:
        raise ValueError("frame: expected at least one pixel, found an empty array")
    frame = np.ascontiguousarray(frame)
    if not frame.flags.writeable:  # the shared kernel is typed for a writable frame (it may decode into it)
        frame = frame.copy()
    return _summary(frame.size, *_unpack_moments(_NO_BYTES, frame, 0, 0, (1 << bit_depth) - 1))


def decode_frame_stats(data: bytes | bytearray | memoryview, pixel_format: str, width: int, height: int,
                       bit_depth: int, out: np.ndarray, path: Path | str = "<bytes>") -> FrameStats:
    """Decode one frame file's bytes into ``out`` ((height, width) uint16, DN) and summarize it.

    Same result as :func:`sensorfleet.rawio.decode_frame` followed by :func:`frame_stats`; for
    the MIPI packed formats both run in one compiled pass (row by row). Raises
    :class:`sensorfleet.rawio.FrameFormatError` naming ``path`` for a file that does not decode.
    """
    if out.shape != (height, width) or out.dtype != np.uint16 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected C-contiguous ({height}, {width}) uint16, found {out.shape} {out.dtype}")
    fmt = _FUSED.get(pixel_format)
    if fmt is None or width * height == 0 or len(data) != expected_nbytes(pixel_format, width, height):
        decode_frame(data, pixel_format, width, height, path, out=out)  # raises on a wrong size
        return frame_stats(out, bit_depth)
    row = row_nbytes(pixel_format, width)
    assert row is not None
    buf = np.frombuffer(data, dtype=np.uint8)
    return _summary(width * height, *_unpack_moments(buf, out, row, fmt, (1 << bit_depth) - 1))
