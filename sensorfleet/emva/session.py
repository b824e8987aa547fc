"""Characterize one session: from its frames (any ``(n, H, W)`` uint16 array-like) or from its
captures zarr group, to table rows and (optionally) a published maps group.

The steps: :func:`sensorfleet.emva.analysis.analyse` (the pass over the frames and the sweeps over
the maps), :func:`sensorfleet.emva.rows.table_rows` (the rows of the tables),
:class:`sensorfleet.emva.mapsgroup.TemporaryMapsGroup` (the maps group, published atomically).
A whole day: :mod:`sensorfleet.emva.day`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import zarr

from sensorfleet.emva.analysis import analyse
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.emva.flatblocks import ATTR as FLAT_BLOCKS_ATTR
from sensorfleet.emva.maps import ArrayLike3D
from sensorfleet.emva.mapsgroup import TemporaryMapsGroup, maps_group_attrs
from sensorfleet.emva.mapstore import MemoryMapStore, ZarrMapStore
from sensorfleet.emva.rows import SessionCharacterization, table_rows
from sensorfleet.emva.steps import BandedAnalysis
from sensorfleet.emva.subset import select_frames
from sensorfleet.ingest.store import FrameReader, GroupAttrs, read_group_attrs
from sensorfleet.manifest import Manifest


def characterize_frames(
    frames: ArrayLike3D,
    manifest: Manifest,
    maps_out: Path | None,
    config: CharacterizationConfig = CharacterizationConfig(),
    *,
    source_attrs: dict[str, Any] | None = None,
) -> SessionCharacterization:
    """Characterize one session from its frames ((n, H, W) uint16, manifest order).

    Writes the maps group to ``maps_out`` (atomically) unless it is None. ``source_attrs`` (e.g.
    ``content_hash`` of the captures group) are copied into the maps group's attrs.

    With ``maps_out`` the maps are written band by band into the group (under its temporary
    name) and read back band by band by the analysis sweeps, so peak memory is bounded by the
    band (``map_band_rows`` x W), not the sensor; without it they are in-memory (H, W) arrays and
    every sweep is one band. See :mod:`sensorfleet.emva.analysis` for the memory model.
    """
    start = time.perf_counter()
    height, width = manifest.sensor.height, manifest.sensor.width
    temporary: TemporaryMapsGroup | None = None
    try:
        store: MemoryMapStore | ZarrMapStore
        if maps_out is None:
            store = MemoryMapStore(height, width)
        else:
            temporary = TemporaryMapsGroup(maps_out)
            store = ZarrMapStore(temporary.group, temporary.path, height, width, _map_band_rows(frames, config))
        analysis = analyse(frames, manifest, config, store)
        rows = table_rows(analysis, manifest, config)
        analysed = time.perf_counter()
        timings = _timings(analysis, analysed - start)
        if temporary is not None and isinstance(store, ZarrMapStore):
            store.drop_scratch()
            attrs = maps_group_attrs(manifest, config, rows, source_attrs)
            if analysis.flat_blocks is not None:
                attrs[FLAT_BLOCKS_ATTR] = analysis.flat_blocks
            temporary.publish(attrs, rows.defects, rows.ptc)
            timings["write_s"] = time.perf_counter() - analysed
    finally:
        if temporary is not None:
            temporary.discard()
    return replace(rows, timings=timings)


def characterize_subset(
    frames: ArrayLike3D,
    manifest: Manifest,
    indices: Sequence[int],
    config: CharacterizationConfig = CharacterizationConfig(),
) -> SessionCharacterization:
    """Characterize the session as if only frames ``indices`` (strictly increasing, manifest
    order) had been taken: the frames are read through a view (:mod:`sensorfleet.emva.subset`),
    never copied, and no maps group is written. Every frame selected: the same rows as
    :func:`characterize_frames` on ``frames``, bit for bit."""
    view, selected = select_frames(frames, manifest, indices)
    return characterize_frames(view, selected, None, config)


def _timings(analysis: BandedAnalysis, seconds: float) -> dict[str, float]:
    """Seconds of the pass (reading, computing), of the analysis after it and of each step;
    ``seconds``: from the start to the table rows."""
    result = analysis.result
    pass_s = result.timings.get("pass_s", 0.0)
    return {
        "pass_s": pass_s,
        "pass_read_wait_s": result.read_s,
        "pass_compute_s": result.compute_s,
        "analysis_s": seconds - pass_s,
        "bytes_in": float(result.bytes_in),
        **{f"step_{k}_s": v for k, v in analysis.timings.items() if k != "pass"},
    }


def _map_band_rows(frames: ArrayLike3D, config: CharacterizationConfig) -> int:
    """Rows per band of the maps store: ``map_band_rows``, rounded to a multiple of the frames'
    zarr chunk height when one divides the other (the pass's bands then fill whole map chunks)."""
    rows = max(1, config.map_band_rows)
    chunks = getattr(frames, "chunks", None)
    if chunks is not None and len(chunks) == 3 and rows % int(chunks[1]) and int(chunks[1]) % rows:
        rows = -(-rows // int(chunks[1])) * int(chunks[1])
    return rows


def _group_attrs(path: Path) -> dict[str, Any]:
    """The attributes of the zarr group at ``path``: read straight from its ``zarr.json`` (zarr v3,
    what ingest writes; half the CPU of opening the group through zarr), else through zarr."""
    attrs = read_group_attrs(path)
    if attrs is not None:
        return dict(attrs)
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a missing/invalid group
        raise FileNotFoundError(f"{path}: not a readable zarr group ({exc})") from None
    return dict(group.attrs)


def open_captures(captures_zarr: Path, listed: GroupAttrs | None = None) -> tuple[FrameReader, Manifest, dict[str, Any]]:
    """(frames reader ``(n, H, W)`` uint16 DN, manifest, attrs) of a complete captures group; clear
    errors otherwise. ``listed``: its attributes as a listing read them
    (:func:`sensorfleet.ingest.store.ingested_groups`), taken while the group still holds that
    ``zarr.json`` instead of reading it again (~0.2 ms of a small session)."""
    path = Path(captures_zarr)
    attrs = dict(listed.attrs) if listed is not None and listed.current(path) else _group_attrs(path)
    if attrs.get("complete") is not True:
        raise ValueError(f"{path}: captures group is not complete (attrs['complete'] = {attrs.get('complete')!r}, expected true)")
    if "manifest" not in attrs:
        raise ValueError(f"{path}: captures group has no 'manifest' attribute")
    manifest = Manifest.model_validate(attrs["manifest"])
    # chunk files read and decompressed straight into the pass's block buffers (zarr's async
    # read path costs as much CPU again as the decompression; docs/storage.md), the array's
    # layout from its zarr.json; strict (a missing chunk is an error) for groups ingest wrote:
    # it writes every chunk
    try:
        frames = FrameReader.open(path / "frames", strict="sensorfleet_version" in attrs)
    except Exception:  # zarr raises several types for a missing/invalid array
        raise ValueError(f"{path}: captures group has no 'frames' array") from None
    return frames, manifest, attrs


def characterize_session(
    captures_zarr: Path, maps_out: Path, config: CharacterizationConfig = CharacterizationConfig()
) -> SessionCharacterization:
    """Characterize the captures group at ``captures_zarr``; write its maps group to ``maps_out``."""
    frames, manifest, attrs = open_captures(captures_zarr)
    source = {"content_hash": attrs.get("content_hash"), "path": str(captures_zarr)}
    return characterize_frames(frames, manifest, maps_out, config, source_attrs=source)
