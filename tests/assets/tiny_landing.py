"""Tiny hand-made landing sessions for the asset and pipeline tests (a few KB each, raw16_le)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sensorfleet.rawio import write_frame

WIDTH, HEIGHT, BIT_DEPTH = 32, 24, 12


def make_session(
    landing: Path,
    session_id: str,
    captured_at: str = "2024-05-01T10:00:00+00:00",
    *,
    seed: int = 0,
    flat_levels: int = 6,
    dark_offset_dn: float = 64.0,
    saturate_dark: bool = False,
    drop_file: bool = False,
) -> Path:
    """A session folder: 2 dark frames at 0.01 s and 2 at 0.05 s, then 2 flats at 0.01 s per
    flat level (500 photons per level step).

    ``saturate_dark`` makes the second frame of each dark point 8 % saturated; ``drop_file`` deletes one
    frame file after writing the manifest (a rejection).
    """
    rng = np.random.default_rng(seed)
    folder = landing / session_id
    folder.mkdir(parents=True)
    frames: list[dict[str, Any]] = []
    full_scale = 2**BIT_DEPTH - 1

    def add(kind: str, photons: float, index: int, exposure_s: float = 0.01) -> None:
        gain = 0.5  # DN/e-, QE 0.6
        signal = rng.poisson(0.6 * photons, (HEIGHT, WIDTH)) * gain if photons else 0.0
        frame = dark_offset_dn + signal + rng.normal(0, 2.0, (HEIGHT, WIDTH))
        if saturate_dark and kind == "dark" and index == 1:
            frame[:2, :] = full_scale
        frame = np.clip(np.rint(frame), 0, full_scale).astype(np.uint16)
        name = f"{kind}_{len(frames):03d}.raw"
        write_frame(folder / name, frame, "raw16_le")
        frames.append({"file": name, "kind": kind, "exposure_s": exposure_s, "photons_per_pixel": photons})

    for exposure_s in (0.01, 0.05):
        for i in range(2):
            add("dark", 0.0, i, exposure_s)
    for level in range(flat_levels):
        for i in range(2):
            add("flat", 500.0 * (level + 1), i)
    manifest = {
        "schema_version": 1,
        "session_id": session_id,
        "module_id": f"M-{session_id}",
        "station_id": "ST1",
        "captured_at": captured_at,
        "temperature_c": 30.0,
        "sensor": {
            "lot_id": "L1", "wafer_id": "W1", "die_x": 1, "die_y": 2, "width": WIDTH,
            "height": HEIGHT, "bit_depth": BIT_DEPTH, "cfa_pattern": "mono", "pixel_pitch_um": 1.4,
        },
        "pixel_format": "raw16_le",
        "frames": frames,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if drop_file:
        (folder / frames[-1]["file"]).unlink()
    return folder
