"""The per-pixel pass's plan: which operating point gets which kernel role."""

from __future__ import annotations

from sensorfleet.emva.kernels import SegmentRole
from sensorfleet.emva.maps import OperatingPoint, choose_spatial, point_roles


def test_point_roles() -> None:
    """The spatial series get the map roles, the other darks feed the regression, the other
    flats give frame and pair sums only."""
    pts = [
        OperatingPoint("dark", 0.01, 0.0, (0, 1)),
        OperatingPoint("dark", 0.01, 0.0, tuple(range(2, 18))),
        OperatingPoint("dark", 0.5, 0.0, (18, 19)),
        OperatingPoint("flat", 0.01, 100.0, (20, 21)),
        OperatingPoint("flat", 0.01, 200.0, tuple(range(22, 38))),
        OperatingPoint("flat", 0.01, 300.0, (38, 39)),
    ]
    dark, flat = choose_spatial(pts)
    assert (dark, flat) == (1, 4)
    assert point_roles(pts, dark, flat) == [SegmentRole.DARK_RUN, SegmentRole.SPATIAL_DARK, SegmentRole.DARK_RUN,
                                            SegmentRole.FRAME_SUMS, SegmentRole.SPATIAL_FLAT, SegmentRole.FRAME_SUMS]
    assert point_roles(pts[:3], 1, None) == [SegmentRole.DARK_RUN, SegmentRole.SPATIAL_DARK, SegmentRole.DARK_RUN]
