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


@numba.njit(cache=True, nogil=True, inline="always")
def _low_word(r: np.ndarray, s: int, group_px: int, low_bits: int) -> np.uint32:
    """The low bits of the packed group at ``r[s:]``: the ``group_px * low_bits / 8`` (1 to 3)
    bytes after its ``group_px`` (2 or 4) high bytes, one little-endian word, pixel 0 lowest."""
    lo = np.uint32(r[s + group_px])
    if group_px * low_bits > 8:
        lo |= np.uint32(r[s + group_px + 1]) << 8
    if group_px * low_bits > 16:
        lo |= np.uint32(r[s + group_px + 2]) << 16
    return lo


@numba.njit(cache=True, nogil=True, inline="always")
def _pixel_of(r: np.ndarray, s: int, k: int, lo: np.uint32, low_bits: int) -> np.uint32:
    """Pixel ``k`` of the packed group at ``r[s:]``: its high byte ``r[s + k]`` and its low bits."""
    return (np.uint32(r[s + k]) << low_bits) | ((lo >> (low_bits * k)) & ((1 << low_bits) - 1))


@numba.njit(cache=True, nogil=True, inline="always")
def _unpack(buf: np.ndarray, out: np.ndarray, row_bytes: int, group_px: int, low_bits: int) -> None:
    """Every row of ``buf`` into ``out``: whole groups of ``group_px`` pixels written out without
    loops (with the constant arguments of every call, straight-line code that is vectorized
    across groups), then the last, partial group (its row is padded to a whole one)."""
    height, width = out.shape
    group_bytes = group_px + group_px * low_bits // 8
    full = width // group_px
    for y in range(height):
        r = buf[y * row_bytes : (y + 1) * row_bytes]
        o = out[y]
        for g in range(full):
            s = group_bytes * g
            d = group_px * g
            lo = _low_word(r, s, group_px, low_bits)
            o[d] = _pixel_of(r, s, 0, lo, low_bits)
            o[d + 1] = _pixel_of(r, s, 1, lo, low_bits)
            if group_px == 4:
                o[d + 2] = _pixel_of(r, s, 2, lo, low_bits)
                o[d + 3] = _pixel_of(r, s, 3, lo, low_bits)
        if width > group_px * full:
            s = group_bytes * full
            lo = _low_word(r, s, group_px, low_bits)
            for k in range(width - group_px * full):
                o[group_px * full + k] = _pixel_of(r, s, k, lo, low_bits)


@numba.njit(cache=True, nogil=True)
def unpack_raw10(buf: np.ndarray, out: np.ndarray, row_bytes: int) -> None:
    """RAW10 ``buf`` (uint8, flat) -> ``out`` (H, W) uint16, values 0..1023 (DN)."""
    _unpack(buf, out, row_bytes, 4, 2)


@numba.njit(cache=True, nogil=True)
def unpack_raw12(buf: np.ndarray, out: np.ndarray, row_bytes: int) -> None:
    """RAW12 ``buf`` (uint8, flat) -> ``out`` (H, W) uint16, values 0..4095 (DN)."""
    _unpack(buf, out, row_bytes, 2, 4)


@numba.njit(cache=True, nogil=True)
def unpack_raw14(buf: np.ndarray, out: np.ndarray, row_bytes: int) -> None:
    """RAW14 ``buf`` (uint8, flat) -> ``out`` (H, W) uint16, values 0..16383 (DN)."""
    _unpack(buf, out, row_bytes, 4, 6)


@numba.njit(cache=True, nogil=True)
def _pixel(row: np.ndarray, x: int, width: int) -> int:
    return int(row[x]) if x < width else 0


@numba.njit(cache=True, nogil=True, inline="always")
def _pack_group(row: np.ndarray, width: int, d: int, o: np.ndarray, s: int, group_px: int, low_bits: int,
                whole: bool) -> None:
    """Pixels ``row[d:d + group_px]`` (zeros past ``width`` unless ``whole``) into the packed group
    at ``o[s:]``, the layout of :func:`_low_word` and :func:`_pixel_of` (straight-line code, as
    in :func:`_unpack`)."""
    mask = np.uint32((1 << low_bits) - 1)
    v0 = np.uint32(row[d]) if whole else np.uint32(_pixel(row, d, width))
    v1 = np.uint32(row[d + 1]) if whole else np.uint32(_pixel(row, d + 1, width))
    o[s] = np.uint8(v0 >> low_bits)
    o[s + 1] = np.uint8(v1 >> low_bits)
    lo = (v0 & mask) | ((v1 & mask) << low_bits)
    if group_px == 4:
        v2 = np.uint32(row[d + 2]) if whole else np.uint32(_pixel(row, d + 2, width))
        v3 = np.uint32(row[d + 3]) if whole else np.uint32(_pixel(row, d + 3, width))
        o[s + 2] = np.uint8(v2 >> low_bits)
        o[s + 3] = np.uint8(v3 >> low_bits)
        lo |= ((v2 & mask) << (2 * low_bits)) | ((v3 & mask) << (3 * low_bits))
    o[s + group_px] = np.uint8(lo & 255)
    if group_px * low_bits > 8:
        o[s + group_px + 1] = np.uint8((lo >> 8) & 255)
    if group_px * low_bits > 16:
        o[s + group_px + 2] = np.uint8(lo >> 16)


@numba.njit(cache=True, nogil=True, inline="always")
def _pack(img: np.ndarray, out: np.ndarray, group_px: int, low_bits: int) -> None:
    """Every row of ``img`` into ``out``: whole groups, then the last one padded with zero pixels."""
    height, width = img.shape
    group_bytes = group_px + group_px * low_bits // 8
    full = width // group_px
    groups = (width + group_px - 1) // group_px
    for y in range(height):
        row = img[y]
        o = out[y]
        for g in range(full):
            _pack_group(row, width, group_px * g, o, group_bytes * g, group_px, low_bits, True)
        for g in range(full, groups):
            _pack_group(row, width, group_px * g, o, group_bytes * g, group_px, low_bits, False)


@numba.njit(cache=True, nogil=True)
def pack_raw10(img: np.ndarray, out: np.ndarray) -> None:
    """``img`` (H, W) uint16 values 0..1023 -> RAW10 ``out`` (H, row_bytes) uint8."""
    _pack(img, out, 4, 2)


@numba.njit(cache=True, nogil=True)
def pack_raw12(img: np.ndarray, out: np.ndarray) -> None:
    """``img`` (H, W) uint16 values 0..4095 -> RAW12 ``out`` (H, row_bytes) uint8."""
    _pack(img, out, 2, 4)


@numba.njit(cache=True, nogil=True)
def pack_raw14(img: np.ndarray, out: np.ndarray) -> None:
    """``img`` (H, W) uint16 values 0..16383 -> RAW14 ``out`` (H, row_bytes) uint8."""
    _pack(img, out, 4, 6)


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


@numba.njit(cache=True, nogil=True)
def png_unfilter(raw: np.ndarray, out: np.ndarray, bytes_per_pixel: int) -> int:
    """Undo PNG row filters of a non-interlaced grayscale image and store it as DN.

    ``raw`` is the inflated image data, ``height`` rows of one filter-type byte followed by
    ``width * bytes_per_pixel`` bytes (1: 8-bit, 2: 16-bit big-endian samples); ``out`` is the
    ``(height, width) uint16`` result. Filter types 0-4 (None, Sub, Up, Average, Paeth) as in
    the PNG specification, section 9. Returns -1, or the first row with an unknown filter type.
    """
    h, w = out.shape
    stride = w * bytes_per_pixel
    prev = np.zeros(stride, np.uint8)
    cur = np.empty(stride, np.uint8)
    bpp = bytes_per_pixel
    prev_in_raw = -1  # offset in ``raw`` of the previous row when it was unfiltered (type 0), not copied
    for y in range(h):
        o = y * (stride + 1)
        ftype = raw[o]
        src = raw[o + 1:o + 1 + stride]
        if ftype == 0:  # the usual case (EMVA data sets): straight from the inflated bytes, no copy
            _png_row_to_dn(src, out[y], bpp)
            prev_in_raw = o + 1
            continue
        if prev_in_raw >= 0:
            prev[:] = raw[prev_in_raw:prev_in_raw + stride]
            prev_in_raw = -1
        if ftype == 1:
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else np.uint8(0)
                cur[i] = np.uint8((np.int32(src[i]) + left) & 0xFF)
        elif ftype == 2:
            for i in range(stride):
                cur[i] = np.uint8((np.int32(src[i]) + prev[i]) & 0xFF)
        elif ftype == 3:
            for i in range(stride):
                left = np.int32(cur[i - bpp]) if i >= bpp else 0
                cur[i] = np.uint8((np.int32(src[i]) + ((left + np.int32(prev[i])) >> 1)) & 0xFF)
        elif ftype == 4:
            for i in range(stride):
                a = np.int32(cur[i - bpp]) if i >= bpp else 0
                b = np.int32(prev[i])
                c = np.int32(prev[i - bpp]) if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                cur[i] = np.uint8((np.int32(src[i]) + pred) & 0xFF)
        else:
            return y
        _png_row_to_dn(cur, out[y], bpp)
        prev, cur = cur, prev
    return -1


@numba.njit(cache=True, nogil=True, inline="always")
def _png_row_to_dn(row: np.ndarray, out: np.ndarray, bytes_per_pixel: int) -> None:
    # one unfiltered row: 16-bit big-endian samples (or 8-bit) -> uint16 DN
    if bytes_per_pixel == 2:
        for x in range(out.shape[0]):
            out[x] = (np.uint16(row[2 * x]) << 8) | np.uint16(row[2 * x + 1])
    else:
        for x in range(out.shape[0]):
            out[x] = row[x]
