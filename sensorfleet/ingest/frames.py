"""The frames of one session into its ``frames`` array: read, hash, decode, check, summarize,
compress, write; frame by frame, on several threads.

Each frame's work is independent of the others' and runs almost entirely outside the GIL (file
reads and writes, XXH3, libdeflate through ``ctypes`` for PNG, the compiled decode and
statistics kernels, c-blosc through ``ctypes``), so ``threads`` frames are processed at once, each
thread with its own buffers. The results come back in manifest order, so the records, checksums
and problems are the same whatever the thread count (tests). EMVA set 003 (302 PNG frames,
640 x 480): 0.55 s on one thread, ~0.3 s on two free cores (docs/storage.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xxhash
import zarr

from sensorfleet.ingest.framestats import decode_frame_stats
from sensorfleet.ingest.store import ChunkStage, FrameWriter
from sensorfleet.ingest.validate import FramePlan, Problem, open_regular
from sensorfleet.manifest import Manifest
from sensorfleet.parallel import available_cores
from sensorfleet.rawio import FrameFormatError, expected_nbytes


@dataclass
class FramesOutcome:
    """What :func:`write_frames` found: one record and one digest per frame written (manifest
    order), the problems (manifest order), and the raw bytes read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    bytes_in: int = 0


@dataclass(frozen=True)
class _Frame:
    """One frame's result: its record and digest, or its problem."""

    plan: FramePlan
    record: dict[str, Any] | None = None
    digest: bytes | None = None
    problem: Problem | None = None
    n_bytes: int = 0


class _Buffers(threading.local):
    """Per thread: the reused raw file buffer, decoded frame and chunk writer."""

    def __init__(self) -> None:
        self.raw: bytearray | None = None
        self.frame: np.ndarray | None = None
        self.writer: FrameWriter | None = None


class _Job:
    """The per-frame work of one session (shared by the threads; state per thread in ``_Buffers``)."""

    def __init__(self, manifest: Manifest, arr: zarr.Array) -> None:
        self.manifest = manifest
        self.arr = arr
        sensor = manifest.sensor
        self.limit = 1 << sensor.bit_depth
        self.expected = expected_nbytes(manifest.pixel_format, sensor.width, sensor.height)
        self.buffers = _Buffers()
        depth, rows = int(arr.chunks[0]), int(arr.chunks[1])
        # chunks several frames deep are gathered across the threads' writers
        self.stage = ChunkStage(len(manifest.frames), depth, sensor.height, rows, sensor.width) if depth > 1 else None
        self.failed = threading.Event()  # a problem seen: check the other frames, write nothing more

    def _thread_buffers(self) -> tuple[bytearray | None, np.ndarray, FrameWriter]:
        b = self.buffers
        if b.frame is None or b.writer is None:
            sensor = self.manifest.sensor
            b.raw = bytearray(self.expected) if self.expected is not None else None
            b.frame = np.empty((sensor.height, sensor.width), dtype=np.uint16)
            b.writer = FrameWriter(self.arr, self.stage)
        return b.raw, b.frame, b.writer

    def __call__(self, plan: FramePlan) -> _Frame:
        raw_buf, frame, writer = self._thread_buffers()
        if self.stage is not None:  # a small frame is decoded straight into its chunk's buffer
            slot = self.stage.slot(plan.index)
            frame = slot if slot is not None else frame
        sensor = self.manifest.sensor
        try:
            with open_regular(plan.path) as f:
                st = os.fstat(f.fileno())
                if raw_buf is not None and st.st_size == self.expected:
                    data: bytes | memoryview = memoryview(raw_buf)[:f.readinto(raw_buf)]
                else:
                    data = f.read()
        except OSError as exc:
            return self._problem(plan, f"cannot be read ({exc.strerror})")
        digest = xxhash.xxh3_128_digest(data)
        try:  # decode + per-frame stats in one pass over the bytes just hashed
            stats = decode_frame_stats(data, self.manifest.pixel_format, sensor.width, sensor.height,
                                       sensor.bit_depth, frame, plan.path)
        except FrameFormatError as exc:
            return self._problem(plan, exc.reason, len(data))
        if stats.max_dn >= self.limit:
            n_over = int(np.count_nonzero(frame >= self.limit))
            return self._problem(plan, (
                f"pixel values exceed bit_depth {sensor.bit_depth}: expected <= {self.limit - 1} DN, found max "
                f"{stats.max_dn} DN ({n_over} pixels above)"), len(data))
        if not self.failed.is_set():
            writer.write(plan.index, frame)
        entry = self.manifest.frames[plan.index]
        record = {
            "index": plan.index, "file": plan.file, "kind": entry.kind, "exposure_s": entry.exposure_s,
            "photons_per_pixel": entry.photons_per_pixel, "wavelength_nm": entry.wavelength_nm,
            "analog_gain": entry.analog_gain, "op_index": plan.op_index, "checksum_xxh3_128": digest.hex(),
            "size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino,
            "mean_dn": stats.mean_dn, "std_dn": stats.std_dn, "min_dn": stats.min_dn, "max_dn": stats.max_dn,
            "saturated_fraction": stats.saturated_fraction,
        }
        return _Frame(plan, record, digest, n_bytes=len(data))

    def _problem(self, plan: FramePlan, reason: str, n_bytes: int = 0) -> _Frame:
        self.failed.set()
        return _Frame(plan, problem=Problem(plan.file, reason), n_bytes=n_bytes)


def frame_threads(threads: int | None, n_frames: int) -> int:
    """Threads for a session of ``n_frames``: ``threads``, or the cores this process may use
    (:func:`sensorfleet.parallel.available_cores`); at least 1, at most one per frame."""
    wanted = available_cores() if threads is None else threads
    return max(1, min(int(wanted), n_frames))


def _results(job: _Job, plans: list[FramePlan], threads: int) -> Iterator[_Frame]:
    if threads == 1:
        yield from map(job, plans)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="ingest-frame")
    try:
        yield from pool.map(job, plans)
    finally:  # on an error, frames not yet started are dropped; the running ones end before the
        pool.shutdown(wait=True, cancel_futures=True)  # caller discards the group (no write in flight)


def write_frames(plans: list[FramePlan], manifest: Manifest, arr: zarr.Array, threads: int | None = None) -> FramesOutcome:
    """Read, check and store every frame of ``plans`` (manifest order) into ``arr`` ((n, H, W)
    uint16, DN) on ``threads`` threads (None: the available cores, see :func:`frame_threads`).

    A frame that cannot be read, does not decode, or holds values above ``2**bit_depth - 1`` DN
    becomes a :class:`Problem`; once one is seen no more frames are written (the caller discards
    the array), but every frame is still checked so that the rejection lists them all. Memory:
    per thread one raw file buffer, one ``(H, W) uint16`` frame and one compressed chunk.
    """
    job = _Job(manifest, arr)
    out = FramesOutcome()
    # chunk files written directly (a local store) are independent; zarr's own write path (other
    # stores) is kept on one thread
    n_threads = frame_threads(threads, len(plans)) if job._thread_buffers()[2].folder is not None else 1
    for r in _results(job, plans, n_threads):
        out.bytes_in += r.n_bytes
        if r.problem is not None:
            out.problems.append(r.problem)
        elif r.record is not None and r.digest is not None:
            out.digests.append(r.digest)
            out.records.append(r.record)
    return out
