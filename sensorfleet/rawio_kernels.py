"""Compiled (numba) kernels behind :mod:`sensorfleet.rawio`: MIPI CSI-2 bit packing and value checks.

Every kernel is ``@njit(cache=True, nogil=True)``: single-threaded, releases the GIL (callers may
run several frames in threads), and compiled once per machine into numba's cache.

Packed layouts (each row packed on its own, padded with zero pixels to a whole group):

- RAW10: 4 pixels in 5 bytes. Bytes 0-3 are the high 8 bits of pixels 0-3, byte 4 holds their
  low 2 bits, pixel 0 in bits 1:0, pixel 3 in bits 7:6.
- RAW12: 2 pixels in 3 bytes. Bytes 0-1 are the high 8 bits, byte 2 = (P1 & 0xF) << 4 | (P0 & 0xF).
- RAW14: 4 pixels in 7 bytes. Bytes 0-3 are the high 8 bits; bytes 4-6 hold the four 6-bit low
  parts as one little-endian 24-bit word, pixel 0 in bits 5:0.

Unpack kernels take the whole file as a flat ``uint8`` buffer of exactly ``height * row_bytes``
bytes (checked by the caller) and write into a preallocated ``(height, width) uint16`` array.
Pack kernels do the reverse; they do not check the value range (the caller does).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def unpack_raw10(buf: np.ndarray, out: np.ndarray, row_bytes: int) -> None:
    """RAW10 ``buf`` (uint8, flat) -> ``out`` (H, W) uint16, values 0..1023 (DN)."""
    height, width = out.shape
    full = width // 4
    for y in range(height):
        r = buf[y * row_bytes : (y + 1) * row_bytes]
        o = out[y]
        for g in range(full):
            s = 5 * g
            lo = np.uint16(r[s + 4])
            d = 4 * g
            o[d] = (np.uint16(r[s]) << 2) | (lo & 3)
            o[d + 1] = (np.uint16(r[s + 1]) << 2) | ((lo >> 2) & 3)
            o[d + 2] = (np.uint16(r[s + 2]) << 2) | ((lo >> 4) & 3)
            o[d + 3] = (np.uint16(r[s + 3]) << 2) | ((lo >> 6) & 3)
        s = 5 * full
        for k in range(width - 4 * full):
            o[4 * full + k] = (np.uint16(r[s + k]) << 2) | ((np.uint16(r[s + 4]) >> (2 * k)) & 3)


@numba.njit(cache=True, nogil=True)
def unpack_raw12(buf: np.ndarray, out: np.ndarray, row_bytes: int) -> None:
    """RAW12 ``buf`` (uint8, flat) -> ``out`` (H, W) uint16, values 0..4095 (DN)."""
    height, width = out.shape
    full = width // 2
    for y in range(height):
        r = buf[y * row_bytes : (y + 1) * row_bytes]
        o = out[y]
        for g in range(full):
            s = 3 * g
            lo = np.uint16(r[s + 2])
            o[2 * g] = (np.uint16(r[s]) << 4) | (lo & 15)
            o[2 * g + 1] = (np.uint16(r[s + 1]) << 4) | (lo >> 4)
        if width & 1:
            s = 3 * full
            o[2 * full] = (np.uint16(r[s]) << 4) | (np.uint16(r[s + 2]) & 15)


@numba.njit(cache=True, nogil=True)
def unpack_raw14(buf: np.ndarray, out: np.ndarray, row_bytes: int) -> None:
    """RAW14 ``buf`` (uint8, flat) -> ``out`` (H, W) uint16, values 0..16383 (DN)."""
    height, width = out.shape
    full = width // 4
    for y in range(height):
        r = buf[y * row_bytes : (y + 1) * row_bytes]
        o = out[y]
        for g in range(full):
            s = 7 * g
            lo = np.uint32(r[s + 4]) | (np.uint32(r[s + 5]) << 8) | (np.uint32(r[s + 6]) << 16)
            d = 4 * g
            o[d] = np.uint16((np.uint32(r[s]) << 6) | (lo & 63))
            o[d + 1] = np.uint16((np.uint32(r[s + 1]) << 6) | ((lo >> 6) & 63))
            o[d + 2] = np.uint16((np.uint32(r[s + 2]) << 6) | ((lo >> 12) & 63))
            o[d + 3] = np.uint16((np.uint32(r[s + 3]) << 6) | ((lo >> 18) & 63))
        rest = width - 4 * full
        if rest:
            s = 7 * full
            lo = np.uint32(r[s + 4]) | (np.uint32(r[s + 5]) << 8) | (np.uint32(r[s + 6]) << 16)
            for k in range(rest):
                o[4 * full + k] = np.uint16((np.uint32(r[s + k]) << 6) | ((lo >> (6 * k)) & 63))


@numba.njit(cache=True, nogil=True)
def _pixel(row: np.ndarray, x: int, width: int) -> int:
    return int(row[x]) if x < width else 0


@numba.njit(cache=True, nogil=True)
def pack_raw10(img: np.ndarray, out: np.ndarray) -> None:
    """``img`` (H, W) uint16 values 0..1023 -> RAW10 ``out`` (H, row_bytes) uint8."""
    height, width = img.shape
    full = width // 4
    groups = (width + 3) // 4
    for y in range(height):
        row = img[y]
        o = out[y]
        for g in range(full):
            d = 4 * g
            s = 5 * g
            p0 = np.uint16(row[d])
            p1 = np.uint16(row[d + 1])
            p2 = np.uint16(row[d + 2])
            p3 = np.uint16(row[d + 3])
            o[s] = np.uint8(p0 >> 2)
            o[s + 1] = np.uint8(p1 >> 2)
            o[s + 2] = np.uint8(p2 >> 2)
            o[s + 3] = np.uint8(p3 >> 2)
            o[s + 4] = np.uint8((p0 & 3) | ((p1 & 3) << 2) | ((p2 & 3) << 4) | ((p3 & 3) << 6))
        for g in range(full, groups):
            acc = 0
            for k in range(4):
                v = _pixel(row, 4 * g + k, width)
                o[5 * g + k] = np.uint8(v >> 2)
                acc |= (v & 3) << (2 * k)
            o[5 * g + 4] = np.uint8(acc)


@numba.njit(cache=True, nogil=True)
def pack_raw12(img: np.ndarray, out: np.ndarray) -> None:
    """``img`` (H, W) uint16 values 0..4095 -> RAW12 ``out`` (H, row_bytes) uint8."""
    height, width = img.shape
    full = width // 2
    for y in range(height):
        row = img[y]
        o = out[y]
        for g in range(full):
            p0 = np.uint16(row[2 * g])
            p1 = np.uint16(row[2 * g + 1])
            o[3 * g] = np.uint8(p0 >> 4)
            o[3 * g + 1] = np.uint8(p1 >> 4)
            o[3 * g + 2] = np.uint8((p0 & 15) | ((p1 & 15) << 4))
        if width & 1:
            p0 = np.uint16(row[2 * full])
            o[3 * full] = np.uint8(p0 >> 4)
            o[3 * full + 1] = 0
            o[3 * full + 2] = np.uint8(p0 & 15)


@numba.njit(cache=True, nogil=True)
def pack_raw14(img: np.ndarray, out: np.ndarray) -> None:
    """``img`` (H, W) uint16 values 0..16383 -> RAW14 ``out`` (H, row_bytes) uint8."""
    height, width = img.shape
    groups = (width + 3) // 4
    full = width // 4
    for y in range(height):
        row = img[y]
        o = out[y]
        for g in range(groups):
            d = 4 * g
            s = 7 * g
            if g < full:
                p0 = np.uint32(row[d])
                p1 = np.uint32(row[d + 1])
                p2 = np.uint32(row[d + 2])
                p3 = np.uint32(row[d + 3])
            else:
                p0 = np.uint32(_pixel(row, d, width))
                p1 = np.uint32(_pixel(row, d + 1, width))
                p2 = np.uint32(_pixel(row, d + 2, width))
                p3 = np.uint32(_pixel(row, d + 3, width))
            o[s] = np.uint8(p0 >> 6)
            o[s + 1] = np.uint8(p1 >> 6)
            o[s + 2] = np.uint8(p2 >> 6)
            o[s + 3] = np.uint8(p3 >> 6)
            lo = (p0 & 63) | ((p1 & 63) << 6) | ((p2 & 63) << 12) | ((p3 & 63) << 18)
            o[s + 4] = np.uint8(lo & 255)
            o[s + 5] = np.uint8((lo >> 8) & 255)
            o[s + 6] = np.uint8(lo >> 16)


@numba.njit(cache=True, nogil=True)
def max_value(frame: np.ndarray) -> int:
    """Largest value of a 2-D integer frame (0 for an empty one)."""
    height, width = frame.shape
    best = 0
    for y in range(height):
        row = frame[y]
        m = 0
        for x in range(width):
            v = int(row[x])
            m = v if v > m else m
        best = m if m > best else best
    return best


@numba.njit(cache=True, nogil=True)
def first_at_least(frame: np.ndarray, limit: int) -> tuple[int, int]:
    """(y, x) of the first pixel, in row-major order, whose value is >= ``limit``; (-1, -1) if none."""
    height, width = frame.shape
    for y in range(height):
        row = frame[y]
        for x in range(width):
            if int(row[x]) >= limit:
                return y, x
    return -1, -1
