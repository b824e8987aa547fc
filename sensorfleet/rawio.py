"""Raw frame codecs: every ``pixel_format`` of the landing contract <-> ``(H, W) uint16``.

MIPI CSI-2 packed formats pack each row on its own; a row whose width is not a multiple of the
pixel group (4 for RAW10/RAW14, 2 for RAW12) is padded with zero pixels to a whole group.
RAW10: 4 pixels in 5 bytes, bytes 0-3 the high 8 bits of pixels 0-3, byte 4 their low 2 bits
(pixel 0 in bits 1:0). RAW12: 2 pixels in 3 bytes, byte 2 = (P1 low nibble << 4) | P0 low nibble.
RAW14: 4 pixels in 7 bytes, bytes 0-3 the high 8 bits, bytes 4-6 the 4 x 6 low bits, pixel 0 in
the least significant bits. Values are stored LSB-aligned (a 10-bit ADC gives 0..1023).

This first version is vectorized numpy; see docs/landing-format.md.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from sensorfleet.manifest import PIXEL_FORMATS

# pixels per group, bytes per group, container bits
_PACKED: dict[str, tuple[int, int, int]] = {
    "raw10_mipi": (4, 5, 10),
    "raw12_mipi": (2, 3, 12),
    "raw14_mipi": (4, 7, 14),
}
_CONTAINER_BITS: dict[str, int] = {"raw8": 8, "raw10_mipi": 10, "raw12_mipi": 12, "raw14_mipi": 14, "raw16_le": 16, "npy": 16, "tiff": 16}


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
    """Bytes of one packed row, or None for self-describing containers (npy, tiff)."""
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
    """Exact file size in bytes a raw frame of this format must have (None for npy/tiff)."""
    row = row_nbytes(pixel_format, width)
    return None if row is None else row * height


def _check_format(pixel_format: str) -> None:
    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"unknown pixel_format {pixel_format!r}; valid: {', '.join(PIXEL_FORMATS)}")


def encode_frame(frame: np.ndarray, pixel_format: str) -> bytes:
    """Encode a ``(H, W)`` integer frame (values must fit the format) into file bytes."""
    _check_format(pixel_format)
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2-D (H, W), got shape {frame.shape}")
    bits = _CONTAINER_BITS[pixel_format]
    if frame.size and (int(frame.max()) >= (1 << bits) or int(frame.min()) < 0):
        raise ValueError(f"values outside [0, {(1 << bits) - 1}] cannot be written as {pixel_format}")
    img = frame.astype(np.uint16, copy=False)
    if pixel_format == "raw8":
        return img.astype(np.uint8).tobytes()
    if pixel_format == "raw16_le":
        return img.astype("<u2").tobytes()
    if pixel_format == "npy":
        buf = io.BytesIO()
        np.save(buf, img, allow_pickle=False)
        return buf.getvalue()
    if pixel_format == "tiff":
        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, img, photometric="minisblack")
        return buf.getvalue()
    return _pack(img, pixel_format).tobytes()


def _pack(img: np.ndarray, pixel_format: str) -> np.ndarray:
    ppg, bpg, bits = _PACKED[pixel_format]
    h, w = img.shape
    groups = -(-w // ppg)
    padded = np.zeros((h, groups * ppg), dtype=np.uint16)
    padded[:, :w] = img
    p = padded.reshape(h, groups, ppg)
    low_bits = bits - 8
    out = np.empty((h, groups, bpg), dtype=np.uint8)
    out[..., :ppg] = (p >> low_bits).astype(np.uint8)
    low = (p & ((1 << low_bits) - 1)).astype(np.uint32)
    # concatenate the low bits of the group, pixel 0 least significant
    acc = np.zeros((h, groups), dtype=np.uint32)
    for i in range(ppg):
        acc |= low[..., i] << (low_bits * i)
    for j in range(bpg - ppg):
        out[..., ppg + j] = ((acc >> (8 * j)) & 0xFF).astype(np.uint8)
    return out.reshape(h, groups * bpg)


def _unpack(buf: np.ndarray, pixel_format: str, width: int, height: int) -> np.ndarray:
    ppg, bpg, bits = _PACKED[pixel_format]
    groups = -(-width // ppg)
    g = buf.reshape(height, groups, bpg)
    low_bits = bits - 8
    acc = np.zeros((height, groups), dtype=np.uint32)
    for j in range(bpg - ppg):
        acc |= g[..., ppg + j].astype(np.uint32) << (8 * j)
    out = np.empty((height, groups, ppg), dtype=np.uint16)
    mask = (1 << low_bits) - 1
    for i in range(ppg):
        out[..., i] = (g[..., i].astype(np.uint16) << low_bits) | ((acc >> (low_bits * i)) & mask).astype(np.uint16)
    return out.reshape(height, groups * ppg)[:, :width]


def decode_frame(data: bytes | memoryview | np.ndarray, pixel_format: str, width: int, height: int,
                 path: Path | str = "<bytes>") -> np.ndarray:
    """Decode one frame file's bytes into a ``(height, width) uint16`` array (DN).

    Raises :class:`FrameFormatError` naming ``path``, the expected and the found size/shape.
    """
    _check_format(pixel_format)
    if pixel_format == "npy":
        return _decode_npy(data, width, height, path)
    if pixel_format == "tiff":
        return _decode_tiff(data, width, height, path)
    expected = expected_nbytes(pixel_format, width, height)
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size != expected:
        raise FrameFormatError(
            path, f"wrong size for {pixel_format} {width}x{height}: expected {expected} bytes, found {raw.size}"
        )
    if pixel_format == "raw8":
        return raw.reshape(height, width).astype(np.uint16)
    if pixel_format == "raw16_le":
        return raw.view("<u2").reshape(height, width).astype(np.uint16)
    return _unpack(raw, pixel_format, width, height)


def _check_shape(arr: np.ndarray, width: int, height: int, path: Path | str, what: str) -> np.ndarray:
    if arr.ndim != 2 or arr.shape != (height, width):
        raise FrameFormatError(path, f"wrong shape for {what}: expected (H, W) = ({height}, {width}), found {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16):
        raise FrameFormatError(path, f"wrong dtype for {what}: expected uint8 or uint16, found {arr.dtype}")
    return arr.astype(np.uint16, copy=False)


def _decode_npy(data: bytes | memoryview | np.ndarray, width: int, height: int, path: Path | str) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError for broken files
        raise FrameFormatError(path, f"not a readable .npy file ({exc})") from None
    return _check_shape(arr, width, height, path, "npy")


def _decode_tiff(data: bytes | memoryview | np.ndarray, width: int, height: int, path: Path | str) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
            pages = list(tif.pages)
            # DNG: the raw CFA image is the full-resolution (sub)IFD, often not the first page
            for page in list(pages):
                pages.extend(getattr(page, "pages", None) or [])
            for page in pages:
                if tuple(page.shape[:2]) == (height, width) and len(page.shape) == 2:
                    return _check_shape(page.asarray(), width, height, path, "tiff")
            found = [tuple(p.shape) for p in pages]
    except FrameFormatError:
        raise
    except Exception as exc:
        raise FrameFormatError(path, f"not a readable TIFF/DNG file ({exc})") from None
    raise FrameFormatError(path, f"no {height}x{width} single-channel image in TIFF; pages found: {found}")


def read_frame(path: Path, pixel_format: str, width: int, height: int) -> np.ndarray:
    """Read and decode one frame file into ``(height, width) uint16`` (DN)."""
    return decode_frame(Path(path).read_bytes(), pixel_format, width, height, path)


def write_frame(path: Path, frame: np.ndarray, pixel_format: str) -> int:
    """Encode and write one frame file; returns bytes written."""
    data = encode_frame(frame, pixel_format)
    Path(path).write_bytes(data)
    return len(data)
