"""Where the full-resolution per-pixel maps of a characterization live while it runs.

Two backends behind one small interface (:class:`MapStore`): create a map, get a writable band
buffer, commit it, read a band back.

- :class:`MemoryMapStore`: the maps are ``(H, W)`` numpy arrays; band buffers and reads are views
  (zero copy). Used when no maps group is written (tests, small sensors, the reference data set);
  memory is O(H x W) per map, as before.
- :class:`ZarrMapStore`: the maps are arrays of the output zarr group itself (under its temporary
  name), chunked ``(chunk_rows, W)``; bands are chunk-aligned, so every band is written once and
  read back whole. Scratch maps (names starting with ``_``: the spatial averages and variances the
  sweeps need but the group does not publish) are stored uncompressed in a ``_scratch`` subgroup
  that :meth:`ZarrMapStore.drop_scratch` deletes before the group is published. Memory is
  O(chunk_rows x W) per map in use. A sensor of one band (H <= chunk_rows) keeps its maps in
  memory as well (that is one band, the same bound) and only writes the published ones: on a
  small sensor, zarr's per-call cost of scratch writes and read-backs was most of the analysis.

Bands are written in increasing row order; a band buffer is valid until the next one of that map.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Protocol

import numpy as np

SCRATCH_GROUP = "_scratch"


class MapStore(Protocol):
    """``(H, W)`` maps written and read band by band (rows ``y0:y1``)."""

    height: int
    width: int

    def band_rows(self) -> int:
        """Rows per band of the sweeps (the whole height for the in-memory store)."""
        ...

    def create(self, name: str, dtype: Any, unit: str = "") -> None:
        """Declare map ``name`` (``(H, W)`` of ``dtype``); ``unit`` is stored as an attribute."""
        ...

    def buffer(self, name: str, y0: int, y1: int) -> np.ndarray:
        """A writable ``(y1 - y0, W)`` buffer for rows ``y0:y1`` of ``name`` (uninitialized)."""
        ...

    def commit(self, name: str, y0: int, band: np.ndarray) -> None:
        """Store ``band`` as rows ``y0:y0 + len(band)`` of ``name`` (a no-op for a view)."""
        ...

    def read(self, name: str, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` of ``name`` (read-only use; a view for the in-memory store)."""
        ...

    def release(self, name: str) -> None:
        """Map ``name`` is complete: free its band buffers."""
        ...


class MemoryMapStore:
    """Maps as in-memory ``(H, W)`` arrays; one band spans the whole sensor."""

    def __init__(self, height: int, width: int) -> None:
        self.height = height
        self.width = width
        self.arrays: dict[str, np.ndarray] = {}
        self.units: dict[str, str] = {}

    def band_rows(self) -> int:
        return self.height

    def create(self, name: str, dtype: Any, unit: str = "") -> None:
        self.arrays[name] = np.empty((self.height, self.width), dtype)
        self.units[name] = unit

    def buffer(self, name: str, y0: int, y1: int) -> np.ndarray:
        return self.arrays[name][y0:y1]

    def commit(self, name: str, y0: int, band: np.ndarray) -> None:
        target = self.arrays[name][y0 : y0 + band.shape[0]]
        if not np.shares_memory(target, band):
            target[...] = band

    def read(self, name: str, y0: int, y1: int) -> np.ndarray:
        return self.arrays[name][y0:y1]

    def release(self, name: str) -> None:
        pass


class ZarrMapStore:
    """Maps as ``(chunk_rows, W)``-chunked arrays of a zarr group (the output group, not yet
    published); published maps compressed as the group always was (blosc lz4 + bitshuffle),
    scratch maps uncompressed."""

    def __init__(self, group: Any, path: Path, height: int, width: int, chunk_rows: int) -> None:
        self.group = group
        self.path = Path(path)
        self.height = height
        self.width = width
        self.chunk_rows = max(1, min(int(chunk_rows), height))
        self.arrays: dict[str, Any] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self._stage: dict[str, np.ndarray] = {}
        self._reads: dict[str, np.ndarray] = {}
        self._scratch: Any = None
        self.single_band = self.height <= self.chunk_rows
        self._mem: dict[str, np.ndarray] = {}  # one-band sensors: every map, in memory

    def band_rows(self) -> int:
        return self.chunk_rows

    def create(self, name: str, dtype: Any, unit: str = "") -> None:
        from zarr.codecs import BloscCodec

        shape = (self.height, self.width)
        chunks = (self.chunk_rows, self.width)
        if self.single_band:
            self._mem[name] = np.empty(shape, dtype)
            if name.startswith("_"):
                return
        if name.startswith("_"):
            if self._scratch is None:
                self._scratch = self.group.create_group(SCRATCH_GROUP)
            arr = self._scratch.create_array(name, shape=shape, dtype=dtype, chunks=chunks, compressors=None,
                                             config={"write_empty_chunks": True})
        else:
            arr = self.group.create_array(
                name, shape=shape, dtype=dtype, chunks=chunks,
                compressors=[BloscCodec(cname="lz4", shuffle="bitshuffle", clevel=5)],
                config={"write_empty_chunks": True}, attributes={"unit": unit},  # one metadata write
            )
        self.arrays[name] = arr

    def buffer(self, name: str, y0: int, y1: int) -> np.ndarray:
        if self.single_band:
            return self._mem[name][y0:y1]
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < y1 - y0:
            buf = self._buffers[name] = np.empty((max(y1 - y0, self.chunk_rows), self.width), self.arrays[name].dtype)
        return buf[: y1 - y0]

    def commit(self, name: str, y0: int, band: np.ndarray) -> None:
        """Write rows ``y0:y0 + len(band)``; bands that do not cover whole chunks are gathered in a
        chunk-sized staging buffer and written when the chunk is complete (no read-modify-write of
        compressed chunks). Writes of one map must come in increasing, contiguous row order."""
        if self.single_band:
            target = self._mem[name][y0 : y0 + band.shape[0]]
            if not np.shares_memory(target, band):
                target[...] = band
            if name in self.arrays and y0 + band.shape[0] == self.height:  # published: written once, whole
                self.arrays[name][...] = self._mem[name]
            return
        arr = self.arrays[name]
        c = self.chunk_rows
        y1 = y0 + band.shape[0]
        if name not in self._stage and y0 % c == 0 and (band.shape[0] % c == 0 or y1 == self.height):
            arr[y0:y1] = band
            return
        stage = self._stage.get(name)
        if stage is None:
            stage = self._stage[name] = np.empty((c, self.width), arr.dtype)
        pos = y0
        while pos < y1:
            cs = pos - pos % c
            ce = min(self.height, cs + c)
            n = min(ce, y1) - pos
            stage[pos - cs : pos - cs + n] = band[pos - y0 : pos - y0 + n]
            pos += n
            if pos == ce:
                arr[cs:ce] = stage[: ce - cs]
        if y1 == self.height:
            del self._stage[name]

    def read(self, name: str, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` decoded into a reused buffer of this map (valid until its next read)."""
        if self.single_band:
            return self._mem[name][y0:y1]
        arr = self.arrays[name]
        buf = self._reads.get(name)
        if buf is None or buf.shape[0] < y1 - y0:
            buf = self._reads[name] = np.empty((max(y1 - y0, self.chunk_rows), self.width), arr.dtype)
        out = buf[: y1 - y0]
        try:
            from zarr.core.buffer.cpu import NDBuffer
        except ImportError:  # pragma: no cover - another zarr layout: plain read
            out[...] = arr[y0:y1]
        else:
            arr.get_basic_selection((slice(y0, y1), slice(None)), out=NDBuffer.from_numpy_array(out))
        return out

    def release(self, name: str) -> None:
        """Free the band buffer of ``name`` (the map is complete)."""
        self._buffers.pop(name, None)
        self._stage.pop(name, None)
        self._reads.pop(name, None)

    def drop_scratch(self) -> None:
        """Delete the scratch maps (before the group is published)."""
        self._buffers.clear()
        self._stage.clear()
        self._reads.clear()
        self._mem.clear()
        if self._scratch is not None:
            shutil.rmtree(self.path / SCRATCH_GROUP, ignore_errors=True)
            self._scratch = None
        for name in [n for n in self.arrays if n.startswith("_")]:
            del self.arrays[name]


def bands(height: int, rows: int) -> list[tuple[int, int]]:
    """``(y0, y1)`` of consecutive bands of ``rows`` rows covering ``height``."""
    rows = max(1, rows)
    return [(y0, min(height, y0 + rows)) for y0 in range(0, height, rows)]
