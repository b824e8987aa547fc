from __future__ import annotations

import numpy as np
import pytest

from sensorfleet.ingest.framestats import decode_frame_stats, frame_stats
from sensorfleet.rawio import FrameFormatError, encode_frame


@pytest.mark.parametrize("shape,bit_depth", [((3, 5), 12), ((300, 517), 10), ((64, 64), 16)])
def test_frame_stats_match_numpy(shape: tuple[int, int], bit_depth: int) -> None:
    rng = np.random.default_rng(sum(shape))
    top = (1 << bit_depth) - 1
    frame = rng.integers(0, top + 1, size=shape, dtype=np.uint16)
    frame[0, 0] = top
    s = frame_stats(frame, bit_depth)
    assert s.mean_dn == pytest.approx(frame.mean(), rel=1e-12)
    assert s.std_dn == pytest.approx(frame.std(), rel=1e-9)
    assert (s.min_dn, s.max_dn) == (int(frame.min()), int(frame.max()))
    assert s.saturated_fraction == np.count_nonzero(frame >= top) / frame.size


def test_frame_stats_extremes_and_errors() -> None:
    full = np.full((4, 4), 65535, dtype=np.uint16)
    s = frame_stats(full, 16)
    assert (s.mean_dn, s.std_dn, s.saturated_fraction) == (65535.0, 0.0, 1.0)
    assert frame_stats(np.zeros((2, 2), np.uint16), 12).saturated_fraction == 0.0
    with pytest.raises(ValueError, match="expected \\(H, W\\) uint16"):
        frame_stats(np.zeros((2, 2), np.int32), 12)


@pytest.mark.parametrize("pixel_format,bit_depth", [
    ("raw10_mipi", 10), ("raw12_mipi", 12), ("raw14_mipi", 14), ("raw12_mipi", 10), ("raw8", 8), ("raw16_le", 16),
])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (50, 203)])
def test_decode_frame_stats_equals_decode_then_stats(pixel_format: str, bit_depth: int,
                                                     shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[1] + bit_depth)
    container = {"raw10_mipi": 10, "raw12_mipi": 12, "raw14_mipi": 14, "raw8": 8, "raw16_le": 16}[pixel_format]
    frame = rng.integers(0, 1 << container, size=shape, dtype=np.uint16)
    frame.flat[-1] = (1 << bit_depth) - 1  # at least one saturated pixel, some maybe above bit_depth
    data = encode_frame(frame, pixel_format)
    out = np.full(shape, 7, dtype=np.uint16)
    s = decode_frame_stats(data, pixel_format, shape[1], shape[0], bit_depth, out, "f.raw")
    assert np.array_equal(out, frame)
    assert s == frame_stats(frame, bit_depth)
    assert s.max_dn == int(frame.max()) and s.min_dn == int(frame.min())
    assert s.saturated_fraction == np.count_nonzero(frame >= (1 << bit_depth) - 1) / frame.size


def test_decode_frame_stats_refuses_wrong_size_and_out() -> None:
    frame = np.zeros((4, 6), dtype=np.uint16)
    data = encode_frame(frame, "raw12_mipi")
    with pytest.raises(FrameFormatError, match="f.raw: wrong size for raw12_mipi 6x4: expected 36 bytes"):
        decode_frame_stats(data[:-1], "raw12_mipi", 6, 4, 12, np.empty((4, 6), np.uint16), "f.raw")
    with pytest.raises(ValueError, match="out: expected C-contiguous \\(4, 6\\) uint16"):
        decode_frame_stats(data, "raw12_mipi", 6, 4, 12, np.empty((4, 6), np.uint8), "f.raw")


def test_frame_stats_of_a_read_only_frame() -> None:
    """frame_stats only reads: a read-only frame (np.frombuffer, a read-only memmap) works."""
    frame = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) % 4096
    ro = frame.copy()
    ro.setflags(write=False)
    assert frame_stats(ro, 12) == frame_stats(frame, 12)
