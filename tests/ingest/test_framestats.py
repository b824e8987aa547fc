from __future__ import annotations

import numpy as np
import pytest

from sensorfleet.ingest.framestats import frame_stats


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
