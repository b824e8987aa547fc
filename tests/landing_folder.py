"""Write one landing session folder (frame files + manifest.json) for the tests: the piece that
the tiny-session helpers of tests/assets and tests/ingest share (they differ in the frames).

Importable as ``landing_folder`` from every test folder (``tests/`` holds the root conftest).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorfleet.rawio import encode_frame


@dataclass(frozen=True)
class LandingFrame:
    """One frame file of a session: its name, operating point and pixels ((H, W) uint16, DN)."""

    file: str
    kind: str
    exposure_s: float
    photons_per_pixel: float
    pixels: np.ndarray


@dataclass(frozen=True)
class SensorFields:
    """The manifest's ``sensor`` block besides the frame geometry (which comes from the pixels)."""

    bit_depth: int
    cfa_pattern: str = "mono"
    die_x: int = 1
    die_y: int = 2
    lot_id: str = "L1"
    wafer_id: str = "W1"
    pixel_pitch_um: float = 1.4


def write_landing_session(
    landing: Path,
    session_id: str,
    frames: Sequence[LandingFrame],
    *,
    pixel_format: str,
    sensor: SensorFields,
    captured_at: str,
    station_id: str,
    temperature_c: float,
    folder: str | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Write ``landing/<folder or session_id>/``: each frame encoded in ``pixel_format``, then
    the manifest (``edit`` may change it first, to make it wrong on purpose)."""
    session_dir = landing / (folder or session_id)
    session_dir.mkdir(parents=True)
    for frame in frames:
        (session_dir / frame.file).write_bytes(encode_frame(frame.pixels, pixel_format))
    height, width = frames[0].pixels.shape
    manifest: dict[str, Any] = {
        "schema_version": 1,
        "session_id": session_id,
        "module_id": f"M-{session_id}",
        "station_id": station_id,
        "captured_at": captured_at,
        "temperature_c": temperature_c,
        "sensor": {
            "lot_id": sensor.lot_id, "wafer_id": sensor.wafer_id, "die_x": sensor.die_x, "die_y": sensor.die_y,
            "width": width, "height": height, "bit_depth": sensor.bit_depth, "cfa_pattern": sensor.cfa_pattern,
            "pixel_pitch_um": sensor.pixel_pitch_um,
        },
        "pixel_format": pixel_format,
        "frames": [
            {"file": f.file, "kind": f.kind, "exposure_s": f.exposure_s, "photons_per_pixel": f.photons_per_pixel}
            for f in frames
        ],
    }
    if edit is not None:
        edit(manifest)
    (session_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return session_dir
