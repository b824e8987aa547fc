"""Raw frame codecs: every ``pixel_format`` of the landing contract <-> ``(H, W) uint16`` (DN).

MIPI CSI-2 packed formats pack each row on its own; a row whose width is not a multiple of the
pixel group (4 for RAW10/RAW14, 2 for RAW12) is padded with zero pixels to a whole group.
RAW10: 4 pixels in 5 bytes, bytes 0-3 the high 8 bits of pixels 0-3, byte 4 their low 2 bits
(pixel 0 in bits 1:0). RAW12: 2 pixels in 3 bytes, byte 2 = (P1 low nibble << 4) | P0 low nibble.
RAW14: 4 pixels in 7 bytes, bytes 0-3 the high 8 bits, bytes 4-6 the 4 x 6 low bits, pixel 0 in
the least significant bits. Values are stored LSB-aligned (a 10-bit ADC gives 0..1023).
``raw8`` is one byte per pixel, ``raw16_le`` one little-endian uint16 per pixel, rows
top to bottom with no padding. ``npy`` holds a 2-D uint8/uint16 array; ``tiff`` a 2-D
uint8/uint16 image; for a DNG the raw CFA image (photometric CFA, often in a SubIFD behind a
thumbnail) is preferred over any other page of the right shape. ``png`` is a non-interlaced
8- or 16-bit grayscale PNG (what EMVA 1288 data sets hold), inflated with libdeflate and
unfiltered by a compiled kernel: no image library on the ingest's path.

The packed formats are (un)packed by compiled kernels (:mod:`sensorfleet.rawio_kernels`).
Decoding checks sizes and shapes, not values: :func:`check_bit_depth` checks the value range.
See docs/landing-format.md.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorfleet import rawio_kernels as _k
from sensorfleet.inflate import InflateError, zlib_decompress_into
from sensorfleet.manifest import PIXEL_FORMATS

# pixels per group, bytes per group, container bits
_PACKED: dict[str, tuple[int, int, int]] = {
    "raw10_mipi": (4, 5, 10),
    "raw12_mipi": (2, 3, 12),
    "raw14_mipi": (4, 7, 14),
}
_CONTAINER_BITS: dict[str, int] = {
    "raw8": 8, "raw10_mipi": 10, "raw12_mipi": 12, "raw14_mipi": 14, "raw16_le": 16, "npy": 16, "tiff": 16,
    "png": 16,
}
_UNPACK: dict[str, Callable[[np.ndarray, np.ndarray, int], None]] = {
    "raw10_mipi": _k.unpack_raw10,
    "raw12_mipi": _k.unpack_raw12,
    "raw14_mipi": _k.unpack_raw14,
}
_PACK: dict[str, Callable[[np.ndarray, np.ndarray], None]] = {
    "raw10_mipi": _k.pack_raw10,
    "raw12_mipi": _k.pack_raw12,
    "raw14_mipi": _k.pack_raw14,
}
_TIFF_PHOTOMETRIC_CFA = 32803


class FrameFormatError(ValueError):
    """A frame file that does not match what its manifest says; names the file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def container_bits(pixel_format: str) -> int:
    """Largest bit depth a pixel format can carry."""
    _check_format(pixel_format)
    return _CONTAINER_BITS[pixel_format]


def row_nbytes(pixel_format: str, width: int) -> int | None:
    """Bytes of one packed row, or None for self-describing containers (npy, tiff, png)."""
    _check_format(pixel_format)
    if pixel_format == "raw8":
        return width
    if pixel_format == "raw16_le":
        return 2 * width
    if pixel_format in _PACKED:
        ppg, bpg, _ = _PACKED[pixel_format]
        return -(-width // ppg) * bpg
    return None


def expected_nbytes(pixel_format: str, width: int, height: int) -> int | None:
    """Exact file size in bytes a raw frame of this format must have (None for npy/tiff/png)."""
    row = row_nbytes(pixel_format, width)
    return None if row is None else row * height


def _check_format(pixel_format: str) -> None:
    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"unknown pixel_format {pixel_format!r}; valid: {', '.join(PIXEL_FORMATS)}")


# ---------------------------------------------------------------------------------------------
# values


def max_value(frame: np.ndarray) -> int:
    """Largest value (DN) of a 2-D unsigned integer frame; 0 for an empty frame."""
    arr = np.asarray(frame)
    if arr.ndim != 2:
        raise ValueError(f"frame must be 2-D (H, W), got shape {arr.shape}")
    if arr.size == 0:
        return 0
    if arr.dtype.kind != "u":
        return int(arr.max())
    return int(_k.max_value(arr))


def check_bit_depth(frame: np.ndarray, bit_depth: int, path: Path | str = "<frame>") -> None:
    """Raise :class:`FrameFormatError` if any value of ``frame`` (H, W) is >= ``2**bit_depth``.

    The message names ``path``, the bit depth, the largest value found and its first (y, x).
    """
    arr = np.asarray(frame)
    peak = max_value(arr)
    if peak >= 1 << bit_depth:
        if arr.dtype.kind == "u":
            y, x = _k.first_at_least(arr, peak)
        else:
            y, x = (int(i) for i in np.unravel_index(int(np.argmax(arr)), arr.shape))
        raise FrameFormatError(
            path,
            f"values exceed bit_depth {bit_depth} (max {(1 << bit_depth) - 1}): "
            f"max found {peak} at (y, x) = ({y}, {x})",
        )


# ---------------------------------------------------------------------------------------------
# encode


def _as_uint16_frame(frame: np.ndarray, pixel_format: str) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim != 2:
        raise ValueError(f"frame must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if arr.size and not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"frame of dtype {arr.dtype} has non-integer values; cannot write {pixel_format}")
    elif arr.dtype.kind not in "uib":
        raise ValueError(f"frame must hold integers, got dtype {arr.dtype}")
    bits = _CONTAINER_BITS[pixel_format]
    if arr.size:
        peak = max_value(arr)
        low = int(arr.min()) if arr.dtype.kind != "u" else 0
        if peak >= 1 << bits or low < 0:
            raise ValueError(
                f"values outside [0, {(1 << bits) - 1}] cannot be written as {pixel_format}: found [{low}, {peak}]"
            )
    return np.ascontiguousarray(arr, dtype=np.uint16)


def encode_frame(frame: np.ndarray, pixel_format: str) -> bytes:
    """Encode a ``(H, W)`` integer frame (DN; values must fit the format) into file bytes."""
    _check_format(pixel_format)
    img = _as_uint16_frame(frame, pixel_format)
    if pixel_format == "raw8":
        return img.astype(np.uint8).tobytes()
    if pixel_format == "raw16_le":
        return img.astype("<u2", copy=False).tobytes()
    if pixel_format == "npy":
        buf = io.BytesIO()
        np.save(buf, img, allow_pickle=False)
        return buf.getvalue()
    if pixel_format == "tiff":
        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, img, photometric="minisblack")
        return buf.getvalue()
    if pixel_format == "png":
        return encode_png(img)
    return pack_mipi(img, pixel_format).tobytes()


def pack_mipi(img: np.ndarray, pixel_format: str) -> np.ndarray:
    """Pack ``img`` (H, W) uint16 into a ``(H, row_bytes) uint8`` array of a MIPI format.

    Values are not range-checked here (:func:`encode_frame` does); bits above the format's depth
    are dropped.
    """
    h, w = img.shape
    row = row_nbytes(pixel_format, w)
    if pixel_format not in _PACKED or row is None:
        raise ValueError(f"{pixel_format!r} is not a MIPI packed format; valid: {', '.join(_PACKED)}")
    out = np.empty((h, row), dtype=np.uint8)
    _PACK[pixel_format](np.ascontiguousarray(img, dtype=np.uint16), out)
    return out


# ---------------------------------------------------------------------------------------------
# decode


def _as_bytes_array(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _output(out: np.ndarray | None, width: int, height: int) -> np.ndarray:
    if out is None:
        return np.empty((height, width), dtype=np.uint16)
    if out.shape != (height, width) or out.dtype != np.uint16:
        raise ValueError(f"out must be ({height}, {width}) uint16, got {out.shape} {out.dtype}")
    return out


def _size_error(path: Path | str, pixel_format: str, width: int, height: int, found: int) -> FrameFormatError:
    row = row_nbytes(pixel_format, width)
    expected = expected_nbytes(pixel_format, width, height)
    assert row is not None and expected is not None
    diff = found - expected
    what = f"{-diff} bytes short" if diff < 0 else f"{diff} bytes too many"
    return FrameFormatError(
        path,
        f"wrong size for {pixel_format} {width}x{height}: expected {expected} bytes "
        f"({height} rows x {row} bytes), found {found} ({what})",
    )


def decode_frame(data: bytes | bytearray | memoryview | np.ndarray, pixel_format: str, width: int, height: int,
                 path: Path | str = "<bytes>", out: np.ndarray | None = None) -> np.ndarray:
    """Decode one frame file's bytes into a ``(height, width) uint16`` array (DN).

    ``out``, if given, is a preallocated ``(height, width) uint16`` array decoded into and
    returned. Raises :class:`FrameFormatError` naming ``path``, the expected and the found
    size/shape/dtype. Values are not checked against a bit depth (see :func:`check_bit_depth`).
    """
    _check_format(pixel_format)
    if pixel_format == "npy":
        return _into(_decode_npy(data, width, height, path), out, width, height)
    if pixel_format == "tiff":
        return _into(_decode_tiff(data, width, height, path), out, width, height)
    if pixel_format == "png":
        return decode_png(data, width, height, path, out)
    raw = _as_bytes_array(data)
    if raw.size != expected_nbytes(pixel_format, width, height):
        raise _size_error(path, pixel_format, width, height, raw.size)
    result = _output(out, width, height)
    if pixel_format == "raw8":
        result[...] = raw.reshape(height, width)
    elif pixel_format == "raw16_le":
        result[...] = raw.view("<u2").reshape(height, width)
    else:
        row = row_nbytes(pixel_format, width)
        assert row is not None
        _UNPACK[pixel_format](raw, result, row)
    return result


def _into(arr: np.ndarray, out: np.ndarray | None, width: int, height: int) -> np.ndarray:
    if out is None:
        return arr
    result = _output(out, width, height)
    result[...] = arr
    return result


def _check_shape(arr: np.ndarray, width: int, height: int, path: Path | str, what: str) -> np.ndarray:
    if arr.ndim != 2 or arr.shape != (height, width):
        raise FrameFormatError(path, f"wrong shape for {what}: expected (H, W) = ({height}, {width}), found {arr.shape}")
    if arr.dtype.kind != "u" or arr.dtype.itemsize > 2:
        raise FrameFormatError(path, f"wrong dtype for {what}: expected uint8 or uint16, found {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.uint16)


def _decode_npy(data: bytes | bytearray | memoryview | np.ndarray, width: int, height: int,
                path: Path | str) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(_as_bytes_array(data).tobytes()), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError for broken files
        raise FrameFormatError(path, f"not a readable .npy file ({exc})") from None
    return _check_shape(arr, width, height, path, "npy")


def _tiff_pages(tif: Any) -> list[Any]:
    """Every IFD of a TIFF, SubIFDs (where a DNG keeps its raw image) included, depth-first."""
    found: list[Any] = []

    def walk(pages: Any) -> None:
        for page in pages:
            found.append(page)
            sub = getattr(page, "pages", None)
            if sub:
                walk(sub)

    walk(tif.pages)
    return found


def _decode_tiff(data: bytes | bytearray | memoryview | np.ndarray, width: int, height: int,
                 path: Path | str) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(_as_bytes_array(data).tobytes())) as tif:
            pages = _tiff_pages(tif)
            cfa = [p for p in pages if int(p.photometric) == _TIFF_PHOTOMETRIC_CFA]
            # a DNG: the raw CFA image is the frame, whatever else the file holds
            candidates = cfa or [p for p in pages if len(p.shape) == 2 and tuple(p.shape) == (height, width)]
            if candidates:
                return _check_shape(candidates[0].asarray(), width, height, path,
                                    "tiff raw CFA image" if cfa else "tiff")
            found = [tuple(p.shape) for p in pages]
    except FrameFormatError:
        raise
    except Exception as exc:
        raise FrameFormatError(path, f"not a readable TIFF/DNG file ({exc})") from None
    raise FrameFormatError(
        path, f"wrong shape for tiff: expected one single-channel (H, W) = ({height}, {width}) image, found pages {found}"
    )


# ---------------------------------------------------------------------------------------------
# png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def encode_png(img: np.ndarray) -> bytes:
    """A ``(H, W) uint16`` frame (DN) as a 16-bit grayscale PNG (filter None on every row)."""
    h, w = img.shape
    rows = np.zeros((h, 1 + 2 * w), np.uint8)
    rows[:, 1:] = np.ascontiguousarray(img, dtype=">u2").view(np.uint8).reshape(h, 2 * w)
    header = struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + _png_chunk(b"IEND", b""))


@dataclass(frozen=True)
class PngHeader:
    """A PNG's IHDR fields (PNG specification, section 11.2.2)."""

    width: int
    height: int
    bit_depth: int
    color_type: int
    interlace: int

    def unsupported(self) -> str | None:
        """Why the ``png`` pixel format cannot hold this image, or None when it can."""
        if self.color_type != 0:
            return f"colour type {self.color_type}, expected 0 (grayscale)"
        if self.bit_depth not in (8, 16):
            return f"bit depth {self.bit_depth}, expected 8 or 16"
        if self.interlace != 0:
            return "Adam7 interlaced, expected non-interlaced"
        return None


def _ihdr(buf: memoryview, path: Path | str) -> PngHeader:
    """The IHDR fields from the first 33 bytes of a PNG (the signature, then IHDR, the first chunk)."""
    if bytes(buf[:8]) != PNG_SIGNATURE:
        raise FrameFormatError(path, "not a PNG file (no PNG signature)")
    if len(buf) < 33 or bytes(buf[8:16]) != b"\x00\x00\x00\rIHDR":
        raise FrameFormatError(path, "truncated PNG: no IHDR header after the signature")
    width, height, bit_depth, color_type = struct.unpack_from(">IIBB", buf, 16)
    return PngHeader(width, height, bit_depth, color_type, buf[28])


def _png_chunks(buf: memoryview, path: Path | str) -> tuple[PngHeader, list[memoryview]]:
    """The IHDR fields and the IDAT payloads of a PNG file's bytes (chunk CRCs are not checked:
    the zlib stream's Adler-32 covers the image data)."""
    header = _ihdr(buf, path)
    pos, idat = 33, []
    while pos + 8 <= len(buf):
        length, tag = struct.unpack_from(">I4s", buf, pos)
        body = buf[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise FrameFormatError(path, f"truncated PNG: chunk {tag!r} at byte {pos} needs {length} bytes")
        if tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
        pos += 12 + length
    if not idat:
        raise FrameFormatError(path, "truncated PNG: no IDAT image data")
    return header, idat


def png_header(path: Path) -> PngHeader:
    """The IHDR fields of the PNG file at ``path`` (reads its first 33 bytes); raises
    :class:`FrameFormatError` naming it for a file that is not a PNG."""
    with open(path, "rb") as f:
        return _ihdr(memoryview(f.read(33)), path)


def decode_png(data: bytes | bytearray | memoryview | np.ndarray, width: int, height: int,
               path: Path | str = "<bytes>", out: np.ndarray | None = None) -> np.ndarray:
    """Decode a non-interlaced 8- or 16-bit grayscale PNG into ``(height, width) uint16`` (DN).

    Raises :class:`FrameFormatError` naming ``path`` for another kind of PNG, a wrong size, or
    image data that do not inflate or unfilter.
    """
    buf = memoryview(_as_bytes_array(data).data if isinstance(data, np.ndarray) else data).cast("B")
    header, idat = _png_chunks(buf, path)
    why = header.unsupported()
    if why is not None:
        raise FrameFormatError(path, f"PNG {why}: the png pixel format holds single-channel 8- or 16-bit images")
    if (header.height, header.width) != (height, width):
        raise FrameFormatError(path, f"wrong shape for png: expected (H, W) = ({height}, {width}), "
                                     f"found ({header.height}, {header.width})")
    bpp = header.bit_depth // 8
    size = height * (1 + width * bpp)
    try:  # libdeflate with the GIL released: the ingest's frame threads inflate in parallel
        raw = zlib_decompress_into(idat[0] if len(idat) == 1 else b"".join(idat), size)
    except InflateError as exc:
        raise FrameFormatError(path, f"PNG image data do not inflate to {size} bytes ({exc.reason})") from None
    result = _output(out, width, height)
    bad_row = _k.png_unfilter(raw, result, bpp)
    if bad_row >= 0:
        raise FrameFormatError(path, f"PNG row {bad_row} has an unknown filter type; expected 0-4")
    return result


# ---------------------------------------------------------------------------------------------
# files


def read_frame(path: Path, pixel_format: str, width: int, height: int,
               out: np.ndarray | None = None) -> np.ndarray:
    """Read and decode one frame file into ``(height, width) uint16`` (DN).

    The size of a raw file is checked before it is read. ``OSError`` (missing/unreadable file)
    propagates; a file of the wrong size/shape/dtype raises :class:`FrameFormatError`.
    """
    _check_format(pixel_format)
    expected = expected_nbytes(pixel_format, width, height)
    if expected is None:
        return decode_frame(Path(path).read_bytes(), pixel_format, width, height, path, out)
    size = os.stat(path).st_size
    if size != expected:
        raise _size_error(path, pixel_format, width, height, size)
    return decode_frame(np.fromfile(path, dtype=np.uint8), pixel_format, width, height, path, out)


def write_frame(path: Path, frame: np.ndarray, pixel_format: str) -> int:
    """Encode and write one frame file; returns bytes written."""
    data = encode_frame(frame, pixel_format)
    Path(path).write_bytes(data)
    return len(data)
