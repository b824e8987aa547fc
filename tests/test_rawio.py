"""Frame codecs: round trips, byte layouts against a literal spec implementation, refusals."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorfleet import rawio
from sensorfleet.manifest import PIXEL_FORMATS
from sensorfleet.rawio import FrameFormatError

PACKED = ("raw10_mipi", "raw12_mipi", "raw14_mipi")
FAST = settings(max_examples=30, deadline=None)


def spec_pack(img: np.ndarray, pixel_format: str) -> bytes:
    """Bit-by-bit MIPI CSI-2 packing written straight from the layout description (slow, small)."""
    ppg, bpg, bits = {"raw10_mipi": (4, 5, 10), "raw12_mipi": (2, 3, 12), "raw14_mipi": (4, 7, 14)}[pixel_format]
    low = bits - 8
    out = bytearray()
    for row in img.tolist():
        row = row + [0] * (-len(row) % ppg)
        for g in range(0, len(row), ppg):
            group = row[g : g + ppg]
            out.extend(v >> low for v in group)
            word = sum((v & ((1 << low) - 1)) << (low * i) for i, v in enumerate(group))
            out.extend((word >> (8 * j)) & 0xFF for j in range(bpg - ppg))
    return bytes(out)


@st.composite
def frames(draw: st.DrawFn, bits: int) -> np.ndarray:
    """(H, W) uint16 frames of odd and even sizes 1..67 holding 0 and 2**bits - 1 and random values."""
    height = draw(st.integers(1, 67))
    width = draw(st.integers(1, 67))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    top = (1 << bits) - 1
    img = rng.integers(0, top, size=(height, width), endpoint=True, dtype=np.uint16)
    # the extremes of the container, at drawn places
    img.flat[draw(st.integers(0, img.size - 1))] = top
    img.flat[draw(st.integers(0, img.size - 1))] = 0
    return img


def _bits(pixel_format: str) -> int:
    return rawio.container_bits(pixel_format)


# ---------------------------------------------------------------------------------------------
# round trips and layouts


@pytest.mark.parametrize("pixel_format", PIXEL_FORMATS)
def test_round_trip_odd_sizes_full_range(pixel_format: str) -> None:
    @FAST
    @given(img=frames(_bits(pixel_format)))
    def check(img: np.ndarray) -> None:
        data = rawio.encode_frame(img, pixel_format)
        h, w = img.shape
        size = rawio.expected_nbytes(pixel_format, w, h)
        if size is not None:
            assert len(data) == size
        got = rawio.decode_frame(data, pixel_format, w, h, "f")
        assert got.dtype == np.uint16 and got.shape == (h, w)
        np.testing.assert_array_equal(got, img)

    check()


@pytest.mark.parametrize("pixel_format", PACKED)
def test_packed_bytes_follow_the_layout(pixel_format: str) -> None:
    @FAST
    @given(img=frames(_bits(pixel_format)))
    def check(img: np.ndarray) -> None:
        assert rawio.encode_frame(img, pixel_format) == spec_pack(img, pixel_format)

    check()


def test_known_byte_vectors() -> None:
    px = np.array([[0x3FF, 0x000, 0x155, 0x2AA]], dtype=np.uint16)
    # high bytes 0xFF 0x00 0x55 0xAA; low 2 bits 3, 0, 1, 2 -> 0b10_01_00_11
    assert rawio.encode_frame(px, "raw10_mipi") == bytes([0xFF, 0x00, 0x55, 0xAA, 0b10010011])
    px12 = np.array([[0xABC, 0x123]], dtype=np.uint16)
    assert rawio.encode_frame(px12, "raw12_mipi") == bytes([0xAB, 0x12, 0x3C])
    px14 = np.array([[0x3FFF, 0x0001, 0x0040, 0x2A95]], dtype=np.uint16)
    # low 6 bits 63, 1, 0, 21 -> word 63 | 1<<6 | 0<<12 | 21<<18
    word = 63 | (1 << 6) | (21 << 18)
    expected = bytes([0xFF, 0x00, 0x01, 0xAA, word & 0xFF, (word >> 8) & 0xFF, word >> 16])
    assert rawio.encode_frame(px14, "raw14_mipi") == expected
    # a 5-pixel RAW10 row is padded to 2 groups (10 bytes) with zero pixels
    assert rawio.expected_nbytes("raw10_mipi", 5, 3) == 30
    assert rawio.expected_nbytes("raw12_mipi", 4000, 3000) == 18_000_000
    assert rawio.expected_nbytes("raw14_mipi", 1, 1) == 7


def test_decode_into_out_and_bad_out() -> None:
    img = np.arange(7 * 9, dtype=np.uint16).reshape(7, 9) * 4
    out = np.full((7, 9), 7, dtype=np.uint16)
    for pixel_format in PIXEL_FORMATS:
        got = rawio.decode_frame(rawio.encode_frame(img, pixel_format), pixel_format, 9, 7, out=out)
        assert got is out
        np.testing.assert_array_equal(out, img)
        out[...] = 0
    with pytest.raises(ValueError, match=r"out must be \(7, 9\) uint16"):
        rawio.decode_frame(rawio.encode_frame(img, "raw12_mipi"), "raw12_mipi", 9, 7,
                           out=np.empty((9, 7), np.uint16))


def test_read_write_frame_on_disk(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    for pixel_format in PIXEL_FORMATS:
        img = rng.integers(0, 1 << rawio.container_bits(pixel_format), (31, 45), dtype=np.uint16)
        path = tmp_path / f"f.{pixel_format}"
        n = rawio.write_frame(path, img, pixel_format)
        assert path.stat().st_size == n
        np.testing.assert_array_equal(rawio.read_frame(path, pixel_format, 45, 31), img)


# ---------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize("pixel_format", ["raw8", "raw10_mipi", "raw12_mipi", "raw14_mipi", "raw16_le"])
def test_wrong_size_is_refused_naming_file_expected_found(pixel_format: str, tmp_path: Path) -> None:
    @FAST
    @given(img=frames(8), delta=st.integers(-40, 40).filter(lambda d: d != 0))
    def check(img: np.ndarray, delta: int) -> None:
        h, w = img.shape
        data = rawio.encode_frame(img, pixel_format)
        expected = len(data)
        bad = data[:delta] if delta < 0 else data + bytes(delta)
        if len(bad) == expected:  # a truncation longer than the file
            return
        with pytest.raises(FrameFormatError) as err:
            rawio.decode_frame(bad, pixel_format, w, h, "cam/frame_0001.raw")
        msg = str(err.value)
        assert err.value.path == "cam/frame_0001.raw" and msg.startswith("cam/frame_0001.raw: ")
        assert f"expected {expected} bytes" in msg and f"found {len(bad)}" in msg
        assert pixel_format in msg and f"{w}x{h}" in msg

    check()
    # the same through a file on disk (size checked before reading)
    path = tmp_path / "short.raw"
    path.write_bytes(b"\0" * 11)
    with pytest.raises(FrameFormatError, match=rf"{path}.*expected \d+ bytes .*found 11 "):
        rawio.read_frame(path, pixel_format, 5, 3)


def test_wrong_frame_dimensions_change_the_expected_size() -> None:
    data = rawio.encode_frame(np.zeros((4, 8), np.uint16), "raw10_mipi")  # 4 rows x 10 bytes
    with pytest.raises(FrameFormatError, match="expected 50 bytes .*found 40"):
        rawio.decode_frame(data, "raw10_mipi", 8, 5, "x.raw")


@pytest.mark.parametrize("pixel_format", ["npy", "tiff"])
def test_wrong_shape_is_refused(pixel_format: str) -> None:
    data = rawio.encode_frame(np.zeros((5, 6), np.uint16), pixel_format)
    with pytest.raises(FrameFormatError) as err:
        rawio.decode_frame(data, pixel_format, 5, 6, "session/f.bin")
    msg = str(err.value)
    assert msg.startswith("session/f.bin: ")
    assert "expected" in msg and "(6, 5)" in msg and "(5, 6)" in msg


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, np.float32, np.float64])
def test_npy_wrong_dtype_is_refused(dtype: type) -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 4), dtype=dtype))
    with pytest.raises(FrameFormatError, match=rf"a\.npy: wrong dtype for npy: expected uint8 or uint16, found {np.dtype(dtype)}"):
        rawio.decode_frame(buf.getvalue(), "npy", 4, 3, "a.npy")


def test_npy_uint8_and_big_endian_accepted() -> None:
    img = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    for arr in (img.astype(np.uint8), img.astype(">u2")):
        buf = io.BytesIO()
        np.save(buf, arr)
        got = rawio.decode_frame(buf.getvalue(), "npy", 4, 3)
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, arr.astype(np.uint16))


@pytest.mark.parametrize("dtype", [np.uint32, np.float32, np.int16])
def test_tiff_wrong_dtype_is_refused(dtype: type) -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((3, 4), dtype=dtype))
    with pytest.raises(FrameFormatError, match=rf"t\.tif: wrong dtype for tiff: expected uint8 or uint16, found {np.dtype(dtype)}"):
        rawio.decode_frame(buf.getvalue(), "tiff", 4, 3, "t.tif")


def test_rgb_tiff_is_refused() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((3, 4, 3), dtype=np.uint8), photometric="rgb")
    with pytest.raises(FrameFormatError, match=r"rgb\.tif: wrong shape for tiff: expected .*\(3, 4\).*found pages \[\(3, 4, 3\)\]"):
        rawio.decode_frame(buf.getvalue(), "tiff", 4, 3, "rgb.tif")


@pytest.mark.parametrize("pixel_format", ["npy", "tiff"])
def test_garbage_container_is_refused(pixel_format: str) -> None:
    with pytest.raises(FrameFormatError, match=r"^junk: not a readable"):
        rawio.decode_frame(b"not an image at all", pixel_format, 4, 3, "junk")


# ---------------------------------------------------------------------------------------------
# DNG


def dng_like(cfa: np.ndarray, thumbnail: np.ndarray) -> bytes:
    """A DNG-shaped TIFF: a preview as IFD 0, the raw CFA image (photometric CFA) in its SubIFD."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        photometric = "rgb" if thumbnail.ndim == 3 else "minisblack"
        tw.write(thumbnail, photometric=photometric, subifds=1, subfiletype=1,
                 extratags=[(50706, "B", 4, (1, 4, 0, 0), True)])  # DNGVersion
        tw.write(cfa, photometric=32803, subfiletype=0,
                 extratags=[(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)])  # RGGB
    return buf.getvalue()


def test_dng_raw_cfa_image_is_decoded() -> None:
    rng = np.random.default_rng(3)
    cfa = rng.integers(0, 4096, (30, 40), dtype=np.uint16)
    data = dng_like(cfa, np.full((6, 8, 3), 200, np.uint8))
    with tifffile.TiffFile(io.BytesIO(data)) as tif:  # the fixture really is DNG-shaped
        first: Any = tif.pages[0]
        assert first.shape == (6, 8, 3) and first.pages[0].photometric == 32803
    np.testing.assert_array_equal(rawio.decode_frame(data, "tiff", 40, 30, "x.dng"), cfa)


def test_dng_prefers_cfa_over_a_same_shaped_preview() -> None:
    cfa = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10)
    data = dng_like(cfa, np.full((12, 10), 9, np.uint16))
    np.testing.assert_array_equal(rawio.decode_frame(data, "tiff", 10, 12, "x.dng"), cfa)


def test_dng_cfa_of_wrong_shape_is_refused() -> None:
    data = dng_like(np.zeros((12, 10), np.uint16), np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(FrameFormatError, match=r"x\.dng: wrong shape for tiff raw CFA image: expected \(H, W\) = \(12, 11\), found \(12, 10\)"):
        rawio.decode_frame(data, "tiff", 11, 12, "x.dng")


# ---------------------------------------------------------------------------------------------
# values


def test_check_bit_depth_names_max_and_position() -> None:
    img = np.full((5, 7), 100, np.uint16)
    rawio.check_bit_depth(img, 8, "f")
    img[1, 2] = 4096
    img[3, 6] = 5000
    img[4, 0] = 5000
    with pytest.raises(FrameFormatError, match=r"^s/f\.raw: values exceed bit_depth 12 \(max 4095\): max found 5000 at \(y, x\) = \(3, 6\)$"):
        rawio.check_bit_depth(img, 12, "s/f.raw")
    rawio.check_bit_depth(img, 13, "f")
    assert rawio.max_value(img) == 5000
    assert rawio.max_value(np.zeros((0, 3), np.uint16)) == 0
    assert rawio.max_value(img.astype(np.int32)) == 5000


def test_check_bit_depth_boundary() -> None:
    @FAST
    @given(img=frames(16), bits=st.integers(8, 16))
    def check(img: np.ndarray, bits: int) -> None:
        peak = int(img.max())
        if peak < 1 << bits:
            rawio.check_bit_depth(img, bits)
        else:
            with pytest.raises(FrameFormatError) as err:
                rawio.check_bit_depth(img, bits)
            y, x = np.argwhere(img == peak)[0]
            assert f"max found {peak} at (y, x) = ({y}, {x})" in str(err.value)

    check()


@pytest.mark.parametrize("pixel_format", PIXEL_FORMATS)
def test_encode_refuses_values_beyond_the_container(pixel_format: str) -> None:
    bits = rawio.container_bits(pixel_format)
    if bits < 16:
        with pytest.raises(ValueError, match=rf"\[0, {(1 << bits) - 1}\] cannot be written as {pixel_format}"):
            rawio.encode_frame(np.full((2, 3), 1 << bits, np.uint16), pixel_format)
    with pytest.raises(ValueError, match="found \\[-1, 0\\]"):
        rawio.encode_frame(np.array([[0, -1]], np.int32), pixel_format)
    with pytest.raises(ValueError, match="non-integer"):
        rawio.encode_frame(np.array([[0.5]]), pixel_format)
    with pytest.raises(ValueError, match="2-D"):
        rawio.encode_frame(np.zeros(3, np.uint16), pixel_format)


def test_unknown_format_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown pixel_format 'raw11'; valid: raw8, raw10_mipi"):
        rawio.decode_frame(b"", "raw11", 1, 1)


# ---------------------------------------------------------------------------------------------
# png


def _filtered_png(img: np.ndarray, filters: list[int]) -> bytes:
    """A grayscale PNG of ``img`` (uint8 or uint16) whose row ``y`` uses filter ``filters[y]``,
    filtered here in plain Python from the PNG specification (section 9), independently of the
    decoder under test."""
    import struct
    import zlib

    bpp = img.dtype.itemsize
    rows = [bytes(r) for r in np.ascontiguousarray(img, dtype=img.dtype.newbyteorder(">")).view(np.uint8).reshape(img.shape[0], -1)]
    out = bytearray()
    prev = bytes(len(rows[0]))
    for row, f in zip(rows, filters, strict=True):
        enc = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else (b if abs(p - b) <= abs(p - c) else c)
            pred = (0, a, b, (a + b) // 2, paeth)[f] if f <= 4 else 0  # 5: an invalid type, for refusals
            enc.append((x - pred) & 0xFF)
        out += bytes([f]) + enc
        prev = row

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8 * bpp, 0, 0, 0, 0)
    return rawio.PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b"")


# every filter after every other, and Up / Average / Paeth right after an unfiltered row (whose
# bytes the decoder reads from the inflated data instead of copying them)
FILTER_ORDERS = [[0, 1, 2, 3, 4, 4, 3, 2, 1, 0], [2, 0, 2, 0, 3, 0, 4, 0, 0, 1], [4, 3, 0, 4, 1, 0, 3, 2, 0, 2]]


@pytest.mark.parametrize("filters", FILTER_ORDERS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_every_filter_type_decodes_to_the_pixels(dtype: type, filters: list[int]) -> None:
    rng = np.random.default_rng(7)
    img = rng.integers(0, np.iinfo(dtype).max, (10, 13), dtype=dtype)
    data = _filtered_png(img, filters)
    np.testing.assert_array_equal(rawio.decode_frame(data, "png", 13, 10), img.astype(np.uint16))
    from PIL import Image  # and Pillow reads the same file the same way

    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))).astype(np.uint16), img.astype(np.uint16))


def test_png_encode_round_trip_and_refusals(tmp_path: Path) -> None:
    img = np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000
    data = rawio.encode_frame(img, "png")
    np.testing.assert_array_equal(rawio.decode_frame(data, "png", 7, 5), img)
    (tmp_path / "f.png").write_bytes(data)
    assert rawio.png_header(tmp_path / "f.png") == rawio.PngHeader(7, 5, 16, 0, 0)
    with pytest.raises(rawio.FrameFormatError, match=r"wrong shape for png: expected \(H, W\) = \(5, 8\), found \(5, 7\)"):
        rawio.decode_frame(data, "png", 8, 5, "f.png")
    with pytest.raises(rawio.FrameFormatError, match="not a PNG file"):
        rawio.decode_frame(b"GIF89a" + bytes(40), "png", 7, 5)
    with pytest.raises(rawio.FrameFormatError, match="truncated PNG"):
        rawio.decode_frame(data[:40], "png", 7, 5)
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(buf, format="PNG")
    with pytest.raises(rawio.FrameFormatError, match=r"PNG colour type 2, expected 0 \(grayscale\)"):
        rawio.decode_frame(buf.getvalue(), "png", 7, 5)
    bad = bytearray(_filtered_png(img, [0, 0, 5, 0, 0]))
    with pytest.raises(rawio.FrameFormatError, match="PNG row 2 has an unknown filter type"):
        rawio.decode_frame(bytes(bad), "png", 7, 5)
