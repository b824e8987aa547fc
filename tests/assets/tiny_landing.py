"""Tiny hand-made landing sessions for the asset and pipeline tests (a few KB each, raw16_le)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.landing_folder import LandingFrame, SensorFields, write_landing_session

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
    frames: list[LandingFrame] = []
    full_scale = 2**BIT_DEPTH - 1

    def add(kind: str, photons: float, index: int, exposure_s: float = 0.01) -> None:
        gain = 0.5  # DN/e-, QE 0.6
        signal = rng.poisson(0.6 * photons, (HEIGHT, WIDTH)) * gain if photons else 0.0
        frame = dark_offset_dn + signal + rng.normal(0, 2.0, (HEIGHT, WIDTH))
        if saturate_dark and kind == "dark" and index == 1:
            frame[:2, :] = full_scale
        pixels = np.clip(np.rint(frame), 0, full_scale).astype(np.uint16)
        frames.append(LandingFrame(f"{kind}_{len(frames):03d}.raw", kind, exposure_s, photons, pixels))

    for exposure_s in (0.01, 0.05):
        for i in range(2):
            add("dark", 0.0, i, exposure_s)
    for level in range(flat_levels):
        for i in range(2):
            add("flat", 500.0 * (level + 1), i)
    folder = write_landing_session(
        landing, session_id, frames, pixel_format="raw16_le", sensor=SensorFields(bit_depth=BIT_DEPTH),
        captured_at=captured_at, station_id="ST1", temperature_c=30.0,
    )
    if drop_file:
        (folder / frames[-1].file).unlink()
    return folder
