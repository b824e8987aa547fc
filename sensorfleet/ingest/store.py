"""Zarr layout of ingested sessions and its atomic publication.

``<captures>/<day>/<session_id>.zarr`` is a zarr v3 group with one array ``frames`` (n, H, W)
uint16 (DN) and the manifest and per-frame metadata in its attributes. A group is built under
``<captures>/<day>/.tmp/<session_id>-<uuid hex>.zarr``, its ``complete`` attribute set last, then
published with ``os.rename``; a rewrite renames the old group aside
(``.tmp/<session_id>-<uuid hex>.old.zarr``), renames the new one in, and deletes the old.
Readers honour ``complete`` and never look into ``.tmp``. Writers of one session serialize on a
lock file under ``<state>/locks`` so two runs of the same day do no harm. The path conventions
live in :mod:`sensorfleet.ingest.layout` (shared with the session index).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import os
import shutil
import threading
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numcodecs.blosc
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.storage import LocalStore

from sensorfleet.config import Paths
from sensorfleet.ingest import index
from sensorfleet.ingest.layout import (
    GROUP_SUFFIX,
    OLD_SUFFIX,
    TMP_DIR,
    day_dir,
    group_path,
    new_temp_path,
    session_lock,
    temp_dir,
    temp_owner,
)

__all__ = ["GROUP_SUFFIX", "OLD_SUFFIX", "TMP_DIR", "day_dir", "group_path", "new_temp_path", "session_lock", "temp_dir"]

FRAMES = "frames"
# Row bands of 512 rows x full width: chosen by benchmarks/bench_chunking.py (docs/storage.md).
CHUNK_ROWS = 512
CHUNK_TARGET_BYTES = 4 << 20
"""Frames of a small sensor are stacked in one chunk up to this size (uint16 bytes): a 12 MP band
(512 x 4000) is one frame deep, a 640 x 480 frame 6 frames deep. Each chunk is a file, and this
ext4 spends ~0.3 ms of CPU creating one: ~90 ms of the ingest of EMVA set 003's 302 frames
(docs/storage.md)."""
MAX_FRAMES_PER_CHUNK = 8
"""At most this many frames per chunk: a read of one frame decompresses its whole chunk."""
CNAME: Literal["lz4"] = "lz4"
CLEVEL = 5
_BLOSC_BITSHUFFLE = 2  # c-blosc's BLOSC_BITSHUFFLE
_BLOSC_MAX_OVERHEAD = 16  # c-blosc's BLOSC_MAX_OVERHEAD: header bytes an incompressible chunk adds
_COMPRESS_THREADS = 1
"""c-blosc threads of one ``blosc_compress_ctx`` call. Always 1: a context call with more starts
and joins its own threads every time, which cost 10x the compression itself on 640 x 480
frames (0.6 s instead of 0.06 s for 302 chunks) and 15-20 % more CPU on 12 MP bands
(docs/storage.md); the ingest spreads frames over cores itself."""


class IncompleteSessionError(FileNotFoundError):
    """A session group that is missing or was never marked complete."""


def frames_per_chunk(n_frames: int, height: int, width: int) -> int:
    """Frames stacked in one chunk of a session of ``n_frames`` (H, W) frames: as many bands of
    ``CHUNK_ROWS`` rows as fit ``CHUNK_TARGET_BYTES`` (at least 1, at most
    ``MAX_FRAMES_PER_CHUNK`` and ``n_frames``)."""
    band_bytes = max(1, min(CHUNK_ROWS, height) * width * 2)
    return max(1, min(MAX_FRAMES_PER_CHUNK, n_frames, CHUNK_TARGET_BYTES // band_bytes))


def frame_chunks(height: int, width: int, depth: int = 1) -> tuple[int, int, int]:
    """Chunk shape of ``frames``: ``depth`` frames deep (:func:`frames_per_chunk`), ``CHUNK_ROWS``
    rows, full width."""
    return (max(1, depth), min(CHUNK_ROWS, height), width)


def compressors() -> list[BloscCodec]:
    """Blosc lz4 + bitshuffle: ~2x on shot-noise-limited 12-bit data at > 1 GB/s."""
    return [BloscCodec(cname=CNAME, shuffle="bitshuffle", clevel=CLEVEL)]


_CompressCtx = Callable[[int, int, int, int, int, int, int, bytes, int, int], int]
_compress_ctx: list[tuple[_CompressCtx, str] | None] = []


def blosc_libraries() -> list[str]:
    """Shared libraries holding c-blosc 1.x, fastest first: the ``libblosc.so`` python-blosc
    ships (built with AVX2 kernels chosen at run time: bitshuffle + lz4 ~30 % faster here), then
    the one numcodecs bundles (built with ``-mno-avx2``, SSE2 only). docs/storage.md."""
    found: list[str] = []
    try:
        files = importlib.metadata.files("blosc") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    libs = sorted((f for f in files if f.name.startswith("libblosc.so")), key=lambda f: len(f.name))
    if libs:  # libblosc.so, .so.1 and .so.1.21.x are copies of one library
        found.append(os.path.realpath(str(libs[0].locate())))
    found.append(numcodecs.blosc.__file__)
    return found


def load_compress_ctx(library: str) -> _CompressCtx | None:
    """``blosc_compress_ctx`` of the c-blosc shared library at ``library`` (None if it cannot be
    loaded or does not export it)."""
    try:
        c_fn = ctypes.CDLL(library).blosc_compress_ctx
    except (OSError, AttributeError):
        return None
    c_fn.restype = ctypes.c_int
    c_fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p,
                     ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    fn: _CompressCtx = c_fn
    return fn


def blosc_compress_ctx() -> tuple[_CompressCtx, str] | None:
    """c-blosc's ``blosc_compress_ctx`` and the library it comes from (None if no library exports
    it), so that a chunk can be compressed into a reused output buffer: numcodecs'
    ``Blosc.encode`` allocates a fresh output per call, and its page faults cost ~25 % of the
    compression time here (docs/storage.md). Every candidate is c-blosc 1.x: the same frames,
    read back by zarr through numcodecs (tests check the bytes)."""
    if not _compress_ctx:
        found = ((fn, lib) for lib in blosc_libraries() if (fn := load_compress_ctx(lib)) is not None)
        _compress_ctx.append(next(found, None))
    return _compress_ctx[0]


@dataclass(frozen=True)
class GroupAttrs:
    """A group's attributes as read from its ``zarr.json``, with that file's identity when read
    (device, inode, modification time in ns, size): :meth:`current` tells, for the cost of one
    ``stat``, whether the group still holds the file read (a rewrite publishes a new folder, a
    change of attributes a new time and size)."""

    attrs: dict[str, Any]
    stamp: tuple[int, int, int, int]

    def current(self, group: Path) -> bool:
        try:
            return _stamp(os.stat(group / "zarr.json")) == self.stamp
        except OSError:
            return False


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def read_group(group: Path) -> GroupAttrs | None:
    """:func:`read_group_attrs` with the file's identity (:class:`GroupAttrs`); None if unreadable."""
    try:
        with open(group / "zarr.json", "rb") as f:
            stamp = _stamp(os.fstat(f.fileno()))
            meta = json.loads(f.read())
    except (OSError, ValueError):
        return None
    attrs = meta.get("attributes") if isinstance(meta, dict) else None
    return GroupAttrs(attrs, stamp) if isinstance(attrs, dict) else None


def read_group_attrs(group: Path) -> dict[str, Any] | None:
    """Attributes of a zarr v3 group read straight from its ``zarr.json`` (None if unreadable)."""
    read = read_group(group)
    return read.attrs if read is not None else None


def is_complete(group: Path) -> bool:
    attrs = read_group_attrs(group)
    return bool(attrs and attrs.get("complete") is True)


def ingested_groups(paths: Paths, day: str) -> list[tuple[Path, GroupAttrs]]:
    """Complete session groups of ``day`` with their attributes (each ``zarr.json`` read once, for
    a caller that opens the groups next: :func:`sensorfleet.emva.session.open_captures` takes
    them while they are :meth:`GroupAttrs.current`), sorted by name (temp and incomplete groups
    skipped)."""
    folder = day_dir(paths, day)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        if p.name.endswith(GROUP_SUFFIX) and not p.name.startswith("."):
            read = read_group(p)
            if read is not None and read.attrs.get("complete") is True:
                found.append((p, read))
    return sorted(found, key=lambda item: item[0])


def list_ingested(paths: Paths, day: str) -> list[Path]:
    """Complete session groups of ``day``, sorted by name (temp and incomplete groups skipped)."""
    return [p for p, _ in ingested_groups(paths, day)]


def find_groups(paths: Paths, session_id: str) -> list[Path]:
    """Complete groups of ``session_id`` in any day (normally zero or one), found through the
    session index (:mod:`sensorfleet.ingest.index`; a scan of the day folders until it is built)."""
    name = f"{session_id}{GROUP_SUFFIX}"
    return sorted(g for day in index.days_of(paths, session_id) if is_complete(g := paths.captures / day / name))


def open_session(paths: Paths, day: str, session_id: str) -> zarr.Group:
    """Open a published session read-only; raise :class:`IncompleteSessionError` if it is
    missing or not marked complete."""
    path = group_path(paths, day, session_id)
    if not is_complete(path):
        state = "not marked complete" if path.exists() else "missing"
        raise IncompleteSessionError(f"{path}: session group is {state}; expected a complete ingested session")
    return zarr.open_group(str(path), mode="r")


def create_frames_group(path: Path, n_frames: int, height: int, width: int,
                        depth: int = 1) -> tuple[zarr.Group, zarr.Array]:
    """New group at ``path`` with an empty ``frames`` array (n, H, W) uint16, chunks ``depth``
    frames deep (the ingest passes :func:`frames_per_chunk`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    group = zarr.open_group(str(path), mode="w-", attributes={"complete": False})
    arr = group.create_array(
        FRAMES,
        shape=(n_frames, height, width),
        dtype="uint16",
        chunks=frame_chunks(height, width, depth),
        compressors=compressors(),
        fill_value=0,
        dimension_names=("frame", "y", "x"),
        # keys "c.<chunk>.<band>.0", all in one folder: a mkdir per key ("c/<chunk>/<band>/0",
        # zarr's default) cost more CPU than writing the chunk on this file system (docs/storage.md)
        chunk_key_encoding={"name": "default", "separator": "."},
        config={"write_empty_chunks": True},  # the default scans every chunk: 1.7-3x slower writes
    )
    return group, arr


class ChunkStage:
    """Frames of chunks more than one frame deep, gathered until each chunk is whole.

    Shared by the writers of one array (one per thread): :meth:`put` copies a frame into its
    chunk's buffer (``(bands, depth, rows, W)`` uint16, the padding zero) and returns the
    buffer once the chunk's last frame is in, to the one caller that completed it. Frames may
    come in any order; memory is one buffer per chunk still open (with frames taken in order on
    a few threads, about one per thread), reused through :meth:`recycle`.
    """

    def __init__(self, n_frames: int, depth: int, height: int, rows: int, width: int) -> None:
        self.n, self.depth, self.h, self.rows, self.w = n_frames, depth, height, rows, width
        self.bands = -(-height // rows)
        self._lock = threading.Lock()
        self._open: dict[int, list[Any]] = {}  # chunk -> [buffer, frames still missing]
        self._free: list[np.ndarray] = []

    def _entry(self, c: int) -> list[Any]:
        with self._lock:
            entry = self._open.get(c)
            if entry is None:
                frames = min(self.depth, self.n - c * self.depth)
                buf = self._free.pop() if self._free else np.empty((self.bands, self.depth, self.rows, self.w), np.uint16)
                buf[:, frames:] = 0  # the frames after the array's last (zarr stores edge chunks whole)
                entry = self._open[c] = [buf, frames]
            return entry

    def slot(self, index: int) -> np.ndarray | None:
        """Where frame ``index`` goes in its chunk's buffer, as a writable C-contiguous ``(H, W)``
        view to decode it into (then :meth:`put` it: no copy), when a frame is one band (H <=
        rows); else None."""
        if self.bands != 1 or self.rows != self.h:
            return None
        c, k = divmod(index, self.depth)
        buf: np.ndarray = self._entry(c)[0]
        return buf[0, k]

    def put(self, index: int, frame: np.ndarray) -> tuple[int, np.ndarray] | None:
        """Copy ``frame`` ((H, W) uint16) in as frame ``index`` (nothing to copy when it is the
        frame's :meth:`slot`); (chunk, buffer) when its chunk is now whole, else None."""
        c, k = divmod(index, self.depth)
        entry = self._entry(c)
        buf = entry[0]
        if buf[0, k].ctypes.data != frame.ctypes.data:  # not decoded in its slot: copy it in
            for band in range(self.bands):
                y0 = band * self.rows
                r = min(self.rows, self.h - y0)
                buf[band, k, :r] = frame[y0:y0 + r]
                buf[band, k, r:] = 0  # the rows below the sensor's last
        with self._lock:
            entry[1] -= 1
            if entry[1]:
                return None
            del self._open[c]
        return c, buf

    def recycle(self, buf: np.ndarray) -> None:
        with self._lock:
            self._free.append(buf)


class FrameWriter:
    """Writes one ``(H, W) uint16`` frame at a time into ``frames`` (n, H, W).

    On a local store each chunk is compressed here with the array's own codec settings (blosc
    lz4 + bitshuffle, typesize 2; blosc frames are self-describing) and written to its chunk
    key as a plain file: zarr's async write path costs about as much CPU again as the
    compression itself (docs/storage.md). Chunks one frame deep are written with their frame;
    deeper ones (small sensors, :func:`frames_per_chunk`) are gathered in a :class:`ChunkStage`
    and written when whole: writers on several threads share one (``stage``), each with its own
    compression buffers. Other stores go through ``arr[i] = frame``. The result reads back
    through zarr like any other array (tests check it bit for bit).
    """

    def __init__(self, arr: zarr.Array, stage: ChunkStage | None = None) -> None:
        self.arr = arr
        n, self.h, self.w = arr.shape
        self.depth = int(arr.chunks[0])
        self.rows = arr.chunks[1]
        self.folder = _direct_folder(arr)
        self.stage = stage
        if self.stage is None and self.depth > 1:
            self.stage = ChunkStage(n, self.depth, self.h, self.rows, self.w)
        self.codec = Blosc(cname=CNAME, clevel=CLEVEL, shuffle=Blosc.BITSHUFFLE, blocksize=0)
        self._edge = np.zeros((self.rows, self.w), dtype=np.uint16)
        ctx = blosc_compress_ctx()
        self._compress = ctx[0] if ctx is not None else None
        self._out = np.empty(self.depth * self.rows * self.w * 2 + _BLOSC_MAX_OVERHEAD, dtype=np.uint8)  # reused
        self._dirs: set[Path] = set()

    def encode(self, chunk: np.ndarray) -> bytes | memoryview:
        """Blosc-compress one C-contiguous uint16 chunk (``(rows, W)``, or ``(depth, rows, W)``);
        the result is valid until the next call (it may be a view of a reused buffer)."""
        if self._compress is None:
            return bytes(self.codec.encode(chunk))
        n = self._compress(CLEVEL, _BLOSC_BITSHUFFLE, 2, chunk.nbytes, chunk.ctypes.data, self._out.ctypes.data,
                           self._out.nbytes, CNAME.encode(), 0, _COMPRESS_THREADS)
        if n <= 0:
            raise RuntimeError(f"blosc_compress_ctx failed with {n} for a {chunk.shape} {chunk.dtype} chunk")
        return self._out[:n].data

    def write(self, index: int, frame: np.ndarray) -> None:
        """Store ``frame`` ((H, W) uint16, DN) as frame ``index``."""
        if self.folder is None:
            self.arr[index] = frame
            return
        frame = np.ascontiguousarray(frame, dtype=np.uint16)
        if self.stage is not None:
            whole = self.stage.put(index, frame)
            if whole is not None:
                c, buf = whole
                for band in range(buf.shape[0]):
                    self._write_chunk((c, band, 0), buf[band])
                self.stage.recycle(buf)
            return
        for band, y0 in enumerate(range(0, self.h, self.rows)):
            chunk = frame[y0:y0 + self.rows]
            if chunk.shape[0] < self.rows:  # zarr stores edge chunks full size, padded with fill 0
                self._edge[: chunk.shape[0]] = chunk
                self._edge[chunk.shape[0]:] = 0
                chunk = self._edge
            self._write_chunk((index, band, 0), chunk)

    def _write_chunk(self, coords: tuple[int, int, int], chunk: np.ndarray) -> None:
        assert self.folder is not None
        path = self.folder / self.arr.metadata.encode_chunk_key(coords)
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        data = memoryview(self.encode(chunk))
        with open(path, "wb", buffering=0) as f:
            while data:  # a raw write may be short
                data = data[f.write(data) or 0:]


def _direct_folder(arr: zarr.Array) -> Path | None:
    """Folder of ``arr``'s chunk files when they can be read and written without zarr: a local
    store, (depth, rows, W) uint16 chunks, little-endian bytes + one blosc codec (what
    :func:`create_frames_group` makes); None otherwise."""
    if not isinstance(arr.store, LocalStore) or arr.ndim != 3 or arr.dtype != np.dtype("uint16"):
        return None
    if arr.chunks[2] != arr.shape[2]:
        return None
    codecs: list[Any] = list(getattr(arr.metadata, "codecs", ()))
    if len(codecs) != 2 or not isinstance(codecs[0], BytesCodec) or not isinstance(codecs[1], BloscCodec):
        return None
    if str(getattr(codecs[0].endian, "value", codecs[0].endian)) != "little":
        return None
    return Path(arr.store.root) / arr.path


@dataclass(frozen=True)
class DirectLayout:
    """What :class:`FrameReader` needs of a frames array: its shape, chunks and fill value, and
    where its chunk files are when it reads them itself (``folder``, None: through zarr; chunk
    keys ``c<sep>frame<sep>band<sep>0``, zarr v3's default encoding)."""

    shape: tuple[int, int, int]
    chunks: tuple[int, int, int]
    fill: int
    folder: Path | None
    separator: str = "/"

    def chunk_key(self, chunk: int, band: int) -> str:
        s = self.separator
        return f"c{s}{chunk}{s}{band}{s}0"

    @classmethod
    def of_array(cls, arr: zarr.Array) -> DirectLayout:
        folder = _direct_folder(arr)
        encoding = arr.metadata.chunk_key_encoding  # type: ignore[union-attr]
        separator = str(getattr(encoding, "separator", "/"))
        if folder is not None and (getattr(encoding, "name", "") != "default" or separator not in "/."):
            folder = None  # chunk keys this class does not spell: through zarr
        return cls(tuple(int(v) for v in arr.shape), tuple(int(c) for c in arr.chunks),  # type: ignore[arg-type]
                   int(arr.metadata.fill_value or 0), folder, separator)  # type: ignore[union-attr]

    @classmethod
    def of_folder(cls, folder: Path) -> DirectLayout | None:
        """The layout read from ``folder/zarr.json`` when it is a zarr v3 uint16 array of
        whole-width regular chunks, little-endian bytes + one blosc codec, default chunk keys,
        no storage transformer (what :func:`_direct_folder` accepts); None otherwise."""
        try:
            meta = json.loads((folder / "zarr.json").read_bytes())
            codecs = meta["codecs"]
            encoding = meta["chunk_key_encoding"]
            separator = encoding.get("configuration", {}).get("separator", "/")
            shape = tuple(int(v) for v in meta["shape"])
            chunks = tuple(int(v) for v in meta["chunk_grid"]["configuration"]["chunk_shape"])
            direct = (meta["zarr_format"] == 3 and meta["node_type"] == "array" and meta["data_type"] == "uint16"
                      and meta["chunk_grid"]["name"] == "regular" and len(shape) == len(chunks) == 3
                      and chunks[2] == shape[2] and not meta.get("storage_transformers")
                      and [c["name"] for c in codecs] == ["bytes", "blosc"]
                      and codecs[0].get("configuration", {}).get("endian") == "little"
                      and encoding["name"] == "default" and separator in ("/", "."))
            fill = int(meta["fill_value"] or 0)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return cls(shape, chunks, fill, folder, separator) if direct else None  # type: ignore[arg-type]


class FrameReader:
    """Read-only ``(n, H, W) uint16`` frames of a captures group, chunk files read and
    decompressed straight into the caller's array.

    zarr's async read path spends about as much CPU again as blosc decompression on these
    arrays (~0.6 GB/s of CPU time against ~1.3-1.6 GB/s for read + decompress alone,
    docs/storage.md); the characterization pass reads a whole session band by band, so this
    is its reader. Supports ``reader[frames, rows, cols]`` with an int or step-1 slices (what
    :mod:`sensorfleet.emva.maps` asks); anything else, and arrays that are not laid out as
    :func:`create_frames_group` makes them, goes through zarr. The bytes are the same as zarr's
    (tests).

    With ``strict`` (groups ingest wrote) a missing chunk file is an error
    (:class:`IncompleteSessionError` naming it): ingest writes every chunk, so a hole means a
    damaged group, not fill values; otherwise it reads as the fill value, as in zarr (a writer
    with ``write_empty_chunks`` off leaves chunks of fill values out). Chunk files are
    opened relative to a handle on the array's folder taken when the reader is made, so a
    rewrite published meanwhile (the folder renamed aside, then deleted) yields the old frames
    or that error, never a mix of old and new frames. A read of several chunks decompresses them
    on ``threads`` threads (c-blosc releases the GIL); a chunk several frames deep (small
    sensors) is decompressed once per read, straight into the output when the read takes it
    whole.
    """

    def __init__(self, arr: zarr.Array | None, *, strict: bool = True, threads: int = 2,
                 layout: DirectLayout | None = None) -> None:
        self._arr = arr
        self.strict = strict
        self.threads = max(1, int(threads))
        self._pool: ThreadPoolExecutor | None = None
        if layout is None:
            if arr is None:
                raise ValueError("FrameReader: give the zarr array, or the layout of a direct one")
            layout = DirectLayout.of_array(arr)
        self._layout = layout
        self.fill = layout.fill
        self.shape: tuple[int, int, int] = layout.shape
        self.chunks: tuple[int, int, int] = layout.chunks
        self.dtype = np.dtype("uint16")
        self.ndim = 3
        self.folder = layout.folder
        self._dir_fd: int | None = None
        if self.folder is not None:
            self._dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
            weakref.finalize(self, os.close, self._dir_fd)

    @classmethod
    def open(cls, folder: Path, *, strict: bool = True, threads: int = 2) -> FrameReader:
        """The reader of the frames array in ``folder``: from its ``zarr.json`` alone when the array
        is laid out as :func:`create_frames_group` makes it (opening it through zarr costs half the
        CPU of opening a small session, and no read here needs zarr), else through zarr. Raises
        what ``zarr.open_array`` raises for a missing or invalid array."""
        layout = DirectLayout.of_folder(Path(folder))
        if layout is None:
            return cls(zarr.open_array(str(folder), mode="r"), strict=strict, threads=threads)
        return cls(None, strict=strict, threads=threads, layout=layout)

    @property
    def arr(self) -> zarr.Array:
        """The zarr array (opened on first use by a reader made by :meth:`open`)."""
        if self._arr is None:
            assert self.folder is not None
            self._arr = zarr.open_array(str(self.folder), mode="r")
        return self._arr

    def __len__(self) -> int:
        return self.shape[0]

    def _ranges(self, key: Any) -> tuple[range, range, range] | None:
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 3 or any(k is Ellipsis for k in key):
            return None
        key = key + (slice(None),) * (3 - len(key))
        out = []
        for k, n in zip(key, self.shape, strict=True):
            if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
                i = int(k) + n if k < 0 else int(k)
                if not 0 <= i < n:
                    raise IndexError(f"index {k} out of range for an axis of {n}")
                out.append(range(i, i + 1))
            elif isinstance(k, slice) and k.step in (None, 1):
                out.append(range(*k.indices(n)))
            else:
                return None
        return out[0], out[1], out[2]

    def __getitem__(self, key: Any) -> np.ndarray:
        ranges = self._ranges(key) if self.folder is not None else None
        if ranges is None:
            return np.asarray(self.arr[key])
        fr, yr, xr = ranges
        out = np.empty((len(fr), len(yr), len(xr)), np.uint16)
        if out.size:
            self._read_into(out, fr, yr, xr)
        squeeze = tuple(ax for ax, k in enumerate(key if isinstance(key, tuple) else (key,))
                        if isinstance(k, (int, np.integer)))
        return out.squeeze(axis=squeeze) if squeeze else out

    def read_into(self, out: np.ndarray, frames: slice, rows: slice, cols: slice = slice(None)) -> None:
        """``out[...] = self[frames, rows, cols]`` without a temporary (step-1 slices; ``out`` a
        C-contiguous uint16 array of the selection's shape, e.g. a reused block buffer)."""
        ranges = self._ranges((frames, rows, cols))
        if ranges is None or self.folder is None:
            out[...] = np.asarray(self.arr[frames, rows, cols])
            return
        fr, yr, xr = ranges
        if out.shape != (len(fr), len(yr), len(xr)) or out.dtype != np.uint16:
            raise ValueError(f"out: expected {(len(fr), len(yr), len(xr))} uint16, found {out.shape} {out.dtype}")
        if out.size:
            self._read_into(out, fr, yr, xr)

    def _read_into(self, out: np.ndarray, fr: range, yr: range, xr: range) -> None:
        assert self.folder is not None
        depth, rows, w = self.chunks[0], self.chunks[1], self.shape[2]
        whole_width = xr.start == 0 and xr.stop == w
        tasks: list[_ChunkTask] = []
        for band in range(yr.start // rows, (yr.stop - 1) // rows + 1):
            c0 = band * rows
            a, b = max(yr.start, c0), min(yr.stop, c0 + rows)  # rows of this chunk wanted
            whole_rows = whole_width and a == c0 and b == c0 + rows
            for c in range(fr.start // depth, (fr.stop - 1) // depth + 1):
                f0, f1 = max(fr.start, c * depth), min(fr.stop, c * depth + depth)  # frames of this chunk wanted
                dest = out[f0 - fr.start:f1 - fr.start, a - yr.start:b - yr.start]
                whole = whole_rows and f1 - f0 == depth and dest.flags.c_contiguous
                tasks.append(_ChunkTask(c, band, f0 - c * depth, a - c0, dest, whole))
        if self.threads > 1 and len(tasks) > 1:  # blosc releases the GIL: decompress on several cores
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="frame-reader")
                weakref.finalize(self, self._pool.shutdown, wait=False)
            for _ in self._pool.map(lambda t: self._chunk_into(t, xr), tasks):
                pass
        else:
            for t in tasks:
                self._chunk_into(t, xr)

    def read_chunk_into(self, out: np.ndarray, chunk: int, frames: range | None = None) -> None:
        """The frames of chunk ``chunk`` (frames ``chunk * depth`` on) into ``out[:k]``, ``out`` a
        C-contiguous ``chunks[0] x H x W`` uint16 buffer the caller may reuse, for a caller that
        wants several frames of a deep chunk (the optics' frame sums). ``frames``: only these of
        the chunk's frames (0-based in it, step 1) are wanted; the rest of ``out`` may keep what
        it held. A one-band array in a folder is read into a buffer kept for the next read and
        decompressed straight into ``out`` (only the blosc blocks of the wanted frames, by
        :func:`blosc_getitem`, when it can), the last chunk's padding included: no temporary
        and no copy; other arrays go through :meth:`read_into`."""
        depth, rows = self.chunks[0], self.chunks[1]
        if out.shape != (depth, self.shape[1], self.shape[2]) or out.dtype != np.uint16 or not out.flags.c_contiguous:
            raise ValueError(f"out: expected a C-contiguous {(depth, self.shape[1], self.shape[2])} uint16 array, "
                             f"found {out.shape} {out.dtype}")
        if self.folder is None or rows < self.shape[1]:
            start = chunk * depth
            stop = min(start + depth, self.shape[0])
            self.read_into(out[:stop - start], slice(start, stop), slice(None))
            return
        data = self._chunk_bytes(chunk, 0, reuse=True)
        if data is None:
            out[...] = self.fill
        elif frames is None or not _decompress_frames(data, out, frames):
            numcodecs.blosc.decompress(data, out)

    def _chunk_bytes(self, chunk: int, band: int, reuse: bool = False) -> bytes | np.ndarray | None:
        """The compressed bytes of chunk (``chunk``, ``band``) (``reuse``: in this thread's read
        buffer, uint8, valid until its next reuse); None for a missing chunk of a
        non-strict reader (it reads as the fill value); a missing chunk of a strict one is an
        :class:`IncompleteSessionError` naming the file, its frames and rows."""
        assert self.folder is not None
        depth, rows = self.chunks[0], self.chunks[1]
        key = self._layout.chunk_key(chunk, band)
        try:
            fd = os.open(key, os.O_RDONLY, dir_fd=self._dir_fd)
        except FileNotFoundError:
            if not self.strict:
                return None
            c0 = band * rows
            first = chunk * depth
            frames = f"frame {first}" if depth == 1 else f"frames {first}-{min(first + depth, self.shape[0]) - 1}"
            raise IncompleteSessionError(
                f"{self.folder / key}: chunk file missing ({frames}, rows {c0}-{c0 + rows - 1}); "
                "expected every chunk of an ingested session, the group is damaged or was replaced"
            ) from None
        with open(fd, "rb", buffering=0, closefd=True) as f:
            if not reuse:
                return f.read()
            size = os.fstat(fd).st_size
            buffer = _read_buffer(size)
            view, got = buffer.data[:size], 0
            while got < size and (n := f.readinto(view[got:])):  # a raw read may be short
                got += n
            return buffer[:got]

    def _chunk_into(self, t: _ChunkTask, xr: range) -> None:
        """Decompress chunk (t.chunk, t.band) and copy its frames ``t.k0:t.k0 + len(t.dest)``, rows
        ``t.r0:t.r0 + t.dest.shape[1]``, columns ``xr`` into ``t.dest`` (straight into it when it
        is the whole chunk)."""
        depth, rows = self.chunks[0], self.chunks[1]
        data = self._chunk_bytes(t.chunk, t.band)
        if data is None:
            t.dest[...] = self.fill
            return
        if t.whole:
            numcodecs.blosc.decompress(data, t.dest)
        else:
            chunk = np.empty((depth, rows, self.shape[2]), np.uint16)
            numcodecs.blosc.decompress(data, chunk)
            n, h = t.dest.shape[0], t.dest.shape[1]
            t.dest[...] = chunk[t.k0:t.k0 + n, t.r0:t.r0 + h, xr.start:xr.stop]


_buffers = threading.local()


def _read_buffer(size: int) -> np.ndarray:
    """This thread's uint8 buffer of at least ``size`` bytes, kept for the next chunk read (a
    fresh multi-MB bytes object per read cost its page faults each time)."""
    held: np.ndarray | None = getattr(_buffers, "read", None)
    if held is None or held.size < size:
        held = _buffers.read = np.empty(max(size, 1 << 20), np.uint8)
    return held


_GetItem = Callable[[int, int, int, int], int]
_getitem: list[_GetItem | None] = []


def blosc_getitem() -> _GetItem | None:
    """c-blosc's ``blosc_getitem(src, start, nitems, dest)`` (items of the buffer's typesize; it
    decompresses only the blocks that hold them, with a context of its own per call, so threads
    may call it at once) from the first of :func:`blosc_libraries` that exports it; None if none."""
    if not _getitem:
        fn: _GetItem | None = None
        for library in blosc_libraries():
            try:
                c_fn = ctypes.CDLL(library).blosc_getitem
            except (OSError, AttributeError):
                continue
            c_fn.restype = ctypes.c_int
            c_fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
            fn = c_fn
            break
        _getitem.append(fn)
    return _getitem[0]


def _decompress_frames(data: bytes | np.ndarray, out: np.ndarray, frames: range) -> bool:
    """Decompress only ``out[frames]`` of the blosc chunk ``data`` (compressed ``out``, uint16)
    straight into ``out``; False (nothing done) when ``data`` is not such a chunk with the
    typesize 2 header, or no library exports :func:`blosc_getitem`."""
    fn = blosc_getitem()
    source = np.frombuffer(data, np.uint8)
    if fn is None or source.size < 16 or not 0 <= frames.start < frames.stop <= out.shape[0] or frames.step != 1:
        return False
    nbytes, cbytes = int(source[4:8].view("<u4")[0]), int(source[12:16].view("<u4")[0])
    if source[3] != 2 or nbytes != out.nbytes or cbytes > source.size:
        return False
    per_frame = out[0].size
    n = fn(source.ctypes.data, frames.start * per_frame, len(frames) * per_frame,
           out.ctypes.data + frames.start * per_frame * 2)
    return bool(n == len(frames) * per_frame * 2)


@dataclass(frozen=True)
class _ChunkTask:
    """One chunk file a read needs: chunk ``chunk`` (frames ``chunk * depth`` on) of row band
    ``band``; its frames from ``k0`` and rows from ``r0`` go to ``dest`` ((frames, rows, cols));
    ``whole``: ``dest`` is the whole chunk, C-contiguous."""

    chunk: int
    band: int
    k0: int
    r0: int
    dest: np.ndarray
    whole: bool


def stored_nbytes(group: Path) -> int:
    """Bytes on disk of everything in a group folder."""
    total = 0
    for dirpath, _, files in os.walk(group):
        for name in files:
            total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def publish(tmp: Path, target: Path) -> None:
    """Make the complete group at ``tmp`` visible at ``target`` with renames.

    A crash leaves either the old group, or no group (old one aside in ``.tmp``, restored by
    :func:`recover`), or the new one; never a partial group at ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        aside = tmp.parent / f"{tmp.name[: -len(GROUP_SUFFIX)]}{OLD_SUFFIX}"
        os.rename(target, aside)
        os.rename(tmp, target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(tmp, target)


def retire(paths: Paths, group: Path, session_id: str) -> None:
    """Delete a published group without ever leaving a partial one at its path: rename it into
    its day's ``.tmp`` under a temp name (which :func:`recover` deletes, never restores) first."""
    aside = new_temp_path(paths, group.parent.name, session_id)
    aside.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(group, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def retire_maps(paths: Paths, day: str, session_id: str) -> bool:
    """Delete the characterization's maps group of ``session_id`` in ``day`` (``maps/<day>/
    <session_id>.zarr``), renamed aside first (``.<name>.<uuid hex>.old``, the maps writers'
    leftover pattern) so no half-deleted group is ever visible; True when there was one."""
    group = paths.maps / day / f"{session_id}{GROUP_SUFFIX}"
    aside = group.parent / f".{group.name}.{uuid.uuid4().hex}.old"
    try:
        os.rename(group, aside)
    except FileNotFoundError:
        return False
    shutil.rmtree(aside, ignore_errors=True)
    return True


def recover(paths: Paths, day: str, session_id: str) -> None:
    """Clean up after a crashed writer of ``session_id`` in ``day`` (caller holds its lock):
    restore an old group left aside by an interrupted rewrite, delete unpublished temp groups."""
    folder = temp_dir(paths, day)
    if not folder.is_dir():
        return
    target = group_path(paths, day, session_id)
    for entry in sorted(folder.iterdir()):
        owner = temp_owner(entry.name)
        if owner is None or owner[0] != session_id:
            continue
        if owner[1] and not target.exists() and is_complete(entry):
            index.add_day(paths, session_id, day)  # before it reappears (the index's rule)
            os.rename(entry, target)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def clean_stale_temp(paths: Paths, day: str) -> list[str]:
    """Recover every session of ``day`` that left temp groups and whose writer is gone (its lock
    is free); returns the session ids recovered."""
    folder = temp_dir(paths, day)
    if not folder.is_dir():
        return []
    owners = sorted({o[0] for e in folder.iterdir() if (o := temp_owner(e.name)) is not None})
    done = []
    for sid in owners:
        with session_lock(paths, sid, blocking=False) as got:
            if got:
                recover(paths, day, sid)
                done.append(sid)
    return done
