"""A tiny landing-session writer for ingest tests (independent of sensorfleet.synth)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sensorfleet.config import Paths
from tests.landing_folder import LandingFrame, SensorFields, write_landing_session

DAY = "2026-03-14"
CAPTURED_AT = f"{DAY}T09:30:00+00:00"
# (kind, exposure_s, photons_per_pixel) x frames per point
DEFAULT_POINTS: list[tuple[str, float, float]] = [("dark", 0.01, 0.0), ("flat", 0.01, 400.0), ("flat", 0.01, 1600.0)]


def make_frames(width: int, height: int, bit_depth: int, points: list[tuple[str, float, float]],
                per_point: int, seed: int) -> list[np.ndarray]:
    """Shot-noise frames: dark offset 64 DN, K = 0.5 DN/e-, QE 0.6, clipped to the ADC range."""
    rng = np.random.default_rng(seed)
    frames = []
    for _, _, photons in points:
        for _ in range(per_point):
            electrons = rng.poisson(0.6 * photons, size=(height, width))
            dn = 64 + 0.5 * electrons + rng.normal(0, 2.0, size=(height, width))
            frames.append(np.clip(np.rint(dn), 0, (1 << bit_depth) - 1).astype(np.uint16))
    return frames


def write_session(
    landing: Path,
    session_id: str,
    *,
    pixel_format: str = "raw12_mipi",
    width: int = 64,
    height: int = 48,
    bit_depth: int = 12,
    points: list[tuple[str, float, float]] | None = None,
    per_point: int = 2,
    seed: int = 0,
    captured_at: str = CAPTURED_AT,
    folder: str | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Write ``landing/<folder or session_id>/`` with a manifest and encoded frame files.

    ``edit`` may change the manifest dict before it is written (to make it wrong on purpose).
    """
    points = points or DEFAULT_POINTS
    ext = {"npy": "npy", "tiff": "tif"}.get(pixel_format, "raw")
    frames = [
        LandingFrame(f"frame_{i:03d}.{ext}", *points[i // per_point], pixels)
        for i, pixels in enumerate(make_frames(width, height, bit_depth, points, per_point, seed))
    ]
    return write_landing_session(
        landing, session_id, frames, pixel_format=pixel_format,
        sensor=SensorFields(bit_depth=bit_depth, cfa_pattern="RGGB", die_x=3, die_y=4),
        captured_at=captured_at, station_id="ST-01", temperature_c=35.0, folder=folder, edit=edit,
    )


def tree_fingerprint(root: Path) -> dict[str, tuple[str, int, int]]:
    """(sha256, size, mtime_ns) of every file under ``root``, plus symlinks by target and other
    special files (FIFOs) by mode."""
    out: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if p.is_symlink():
                out[rel] = (f"-> {os.readlink(p)}", st.st_size, st.st_mtime_ns)
            elif not stat.S_ISREG(st.st_mode):  # a FIFO or device: never read (it may block)
                out[rel] = (f"mode {st.st_mode:o}", st.st_size, st.st_mtime_ns)
            else:
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths(root=tmp_path / "root", landing=tmp_path / "landing")
    p.landing.mkdir(parents=True)
    return p


@pytest.fixture
def make_session() -> Callable[..., Path]:
    """The :func:`write_session` helper (fixtures avoid importing conftest by module name)."""
    return write_session


@pytest.fixture
def fingerprint() -> Callable[[Path], dict[str, tuple[str, int, int]]]:
    return tree_fingerprint


@pytest.fixture
def frames_of() -> Callable[..., list[np.ndarray]]:
    return make_frames
