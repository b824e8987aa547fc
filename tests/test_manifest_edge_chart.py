"""The ``edge_chart`` frame kind of the landing contract and its optional ROI list."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sensorfleet.manifest import ManifestError, parse_manifest


def _manifest(*frames: dict[str, Any]) -> str:
    return json.dumps({
        "schema_version": 1, "session_id": "S1", "module_id": "M1", "station_id": "ST1",
        "captured_at": "2026-03-02T10:00:00+00:00", "temperature_c": 30.0,
        "sensor": {"lot_id": "L", "wafer_id": "W", "die_x": 0, "die_y": 0, "width": 640, "height": 480,
                   "bit_depth": 12, "cfa_pattern": "RGGB", "pixel_pitch_um": 2.0},
        "pixel_format": "npy",
        "frames": [{"file": "d0.npy", "kind": "dark", "exposure_s": 0.01, "photons_per_pixel": 0.0}, *frames],
    })


def _chart(**extra: Any) -> dict[str, Any]:
    return {"file": "c0.npy", "kind": "edge_chart", "exposure_s": 0.01, "photons_per_pixel": 8000.0, **extra}


def test_chart_frames_with_and_without_rois_are_valid() -> None:
    m = parse_manifest(_manifest(_chart(), _chart(file="c1.npy", roi=[{"x": 10, "y": 20, "width": 40, "height": 80}])))
    assert [f.kind for f in m.frames] == ["dark", "edge_chart", "edge_chart"]
    assert m.frames[1].roi is None and m.frames[2].roi is not None and m.frames[2].roi[0].height == 80
    assert m.n_operating_points == 1  # the dark point; charts are no operating point
    assert parse_manifest(_manifest()).n_operating_points == 1  # no charts: valid, no SFR rows


@pytest.mark.parametrize(("frame", "message"), [
    (_chart(roi=[{"x": 620, "y": 0, "width": 40, "height": 80}]), "outside the 640x480 sensor"),
    (_chart(roi=[{"x": 0, "y": 0, "width": 0, "height": 80}]), "width"),
    ({"file": "f.npy", "kind": "flat", "exposure_s": 0.01, "photons_per_pixel": 10.0,
      "roi": [{"x": 0, "y": 0, "width": 8, "height": 8}]}, "only edge_chart frames take one"),
    (_chart(kind="chart"), "edge_chart"),
])
def test_bad_chart_entries_are_refused_naming_the_problem(frame: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(_manifest(frame))
