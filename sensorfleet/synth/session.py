"""One simulated capture session: its manifest (the landing contract) and its frames in memory.

The fleet writer (:mod:`sensorfleet.synth.writer`) writes sessions to disk with
:func:`session_manifest`; tests and benchmarks that need one session's frames without files call
:func:`simulate_session`, which renders with the same camera model
(:mod:`sensorfleet.synth.physics`) and returns the same truth (:class:`ModuleMaps`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sensorfleet.manifest import Manifest
from sensorfleet.synth.params import ModuleParams
from sensorfleet.synth.physics import (
    ModuleMaps,
    build_maps,
    maps_for_frame,
    module_rng,
    render_frame,
)
from sensorfleet.synth.plan import CapturePlan

#: file extension of a frame per pixel format
FRAME_EXTENSIONS = {"raw8": "raw8", "raw10_mipi": "raw10", "raw12_mipi": "raw12", "raw14_mipi": "raw14",
                    "raw16_le": "raw16", "npy": "npy", "tiff": "tif", "png": "png"}
#: wavelength of the flat-field light source (nm), written for every flat frame
FLAT_WAVELENGTH_NM = 530.0


@dataclass(frozen=True)
class SessionIdentity:
    """Who and where a session is: the manifest's identity fields (the fleet draws them per
    module; a test takes the defaults)."""

    session_id: str
    module_id: str
    station_id: str = "ST1"
    captured_at: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    lot_id: str = "L1"
    wafer_id: str = "W1"
    die_x: int = 1
    die_y: int = 2


def frame_file_name(index: int, pixel_format: str) -> str:
    """Name of frame ``index`` of a session in ``pixel_format`` (``frame_007.raw12``)."""
    return f"frame_{index:03d}.{FRAME_EXTENSIONS[pixel_format]}"


def session_manifest(params: ModuleParams, plan: CapturePlan, identity: SessionIdentity,
                     pixel_format: str) -> dict[str, Any]:
    """The manifest of one session as a JSON-ready dict (key order as written to disk)."""
    frames: list[dict[str, Any]] = []
    for i, frame in enumerate(plan.frames):
        entry: dict[str, Any] = {"file": frame_file_name(i, pixel_format), "kind": frame.kind,
                                 "exposure_s": frame.exposure_s, "photons_per_pixel": frame.photons_per_pixel}
        if frame.kind == "flat":
            entry["wavelength_nm"] = FLAT_WAVELENGTH_NM
        frames.append(entry)
    return {
        "schema_version": 1,
        "session_id": identity.session_id,
        "module_id": identity.module_id,
        "station_id": identity.station_id,
        "captured_at": identity.captured_at.isoformat(),
        "temperature_c": params.temperature_c,
        "sensor": {
            "lot_id": identity.lot_id, "wafer_id": identity.wafer_id, "die_x": identity.die_x,
            "die_y": identity.die_y, "width": params.width, "height": params.height,
            "bit_depth": params.bit_depth, "cfa_pattern": params.cfa_pattern, "pixel_pitch_um": params.pixel_pitch_um,
        },
        "pixel_format": pixel_format,
        "frames": frames,
    }


def simulate_session(params: ModuleParams, plan: CapturePlan, seed: int | Sequence[int], session_id: str,
                     identity: SessionIdentity | None = None) -> tuple[np.ndarray, Manifest, ModuleMaps]:
    """Render one session in memory: frames ``(n, H, W) uint16`` (DN) in plan order, its manifest
    (pixel format ``npy``, nothing written) and the module's truth (per-pixel maps, injected
    defects, realized summary).

    ``seed`` fixes everything, as for :func:`~sensorfleet.synth.physics.simulate_module`; the
    fleet's module ``i`` of fleet seed ``s`` is ``seed=(s, i)``. ``identity`` defaults to module
    ``M-<session_id>`` on station ST1 captured 2026-03-01 12:00 UTC.
    """
    identity = identity or SessionIdentity(session_id=session_id, module_id=f"M-{session_id}")
    if identity.session_id != session_id:
        raise ValueError(f"identity.session_id {identity.session_id!r} differs from session_id {session_id!r}")
    rng, key = module_rng(seed)
    maps = build_maps(params, rng, plan.ptc_exposure_s)
    frames = np.empty((len(plan), params.height, params.width), dtype=np.uint16)
    for i, frame in enumerate(plan.frames):
        render_frame(params, maps_for_frame(params, maps, frame), frame, i, key, frames[i])
    manifest = Manifest.model_validate(session_manifest(params, plan, identity, "npy"))
    return frames, manifest, maps
