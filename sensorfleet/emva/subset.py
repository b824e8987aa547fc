"""A subset of a session's frames, characterized in place: no frame is copied.

A capture-plan study (:mod:`sensorfleet.capture_plan`) re-characterizes a session as if its
station had taken only some of its frames. :func:`select_frames` gives the two things the
characterization reads, narrowed to the chosen frames: a view of the frame stack
(:class:`SelectedFrames`, ``(k, H, W)`` uint16 over the source's ``(n, H, W)``) and the
manifest with only those frame records. The characterization itself is unchanged: it sees an
ordinary array-like and an ordinary manifest, so its normal path keeps its speed and results,
and a selection of every frame reads the same chunks in the same blocks as the session itself
(bit-identical results, tests/emva/test_subset.py).

Reads of the view go straight to the source: consecutive selected frames that are consecutive
in the source become one ``read_into`` of the source (a :class:`sensorfleet.ingest.store.FrameReader`
decompresses its chunk files into the pass's block buffer), so only the selected frames' chunks
are read, each once per band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sensorfleet.emva.maps import ArrayLike3D
from sensorfleet.manifest import Manifest


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the consecutive stretches of sorted ``indices``."""
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(indices)]])
    return [(int(indices[a]), int(indices[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


class SelectedFrames:
    """Frames ``indices`` (strictly increasing) of ``frames`` ((n, H, W) uint16) as a
    ``(len(indices), H, W)`` array-like: ``read_into`` and ``view[frames, rows, cols]`` with
    step-1 slices or ints, what :mod:`sensorfleet.emva.maps` asks. ``chunks`` is the source's, so
    the pass bands a selection exactly as it bands the session."""

    def __init__(self, frames: ArrayLike3D, indices: Sequence[int]) -> None:
        index = np.asarray(indices, dtype=np.int64)
        n = int(frames.shape[0])
        if index.ndim != 1 or not len(index):
            raise ValueError("frame selection: expected at least one frame index")
        if index[0] < 0 or index[-1] >= n or np.any(np.diff(index) <= 0):
            raise ValueError(f"frame selection: expected strictly increasing indices in 0..{n - 1}, "
                             f"found {index.tolist()[:8]}{'...' if len(index) > 8 else ''}")
        self.source = frames
        self.indices = index
        self.shape: tuple[int, int, int] = (len(index), int(frames.shape[1]), int(frames.shape[2]))
        self.dtype = np.dtype("uint16")
        self.ndim = 3
        chunks = getattr(frames, "chunks", None)
        if chunks is not None:
            self.chunks = tuple(int(c) for c in chunks)

    def __len__(self) -> int:
        return self.shape[0]

    def _source_runs(self, key: slice) -> list[tuple[int, int]]:
        if key.step not in (None, 1):
            raise IndexError(f"frame selection: only step-1 frame slices are supported, found step {key.step}")
        a, b, _ = key.indices(self.shape[0])
        return _runs(self.indices[a:b])

    def read_into(self, out: np.ndarray, frames: slice, rows: slice, cols: slice = slice(None)) -> None:
        """``out[...] = self[frames, rows, cols]``, each stretch of the selection that is
        consecutive in the source read by one call of the source (its ``read_into`` when it has
        one: no temporary)."""
        direct = getattr(self.source, "read_into", None)
        k = 0
        for a, b in self._source_runs(frames):
            part = out[k:k + b - a]
            if direct is not None:
                direct(part, slice(a, b), rows, cols)
            else:
                part[...] = self.source[a:b, rows, cols]
            k += b - a

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, (int, np.integer)) and not isinstance(first, bool):
            return np.asarray(self.source[(int(self.indices[int(first)]), *rest)])
        if not isinstance(first, slice):
            raise IndexError(f"frame selection: index frames with an int or a slice, found {type(first).__name__}")
        parts = [np.asarray(self.source[(slice(a, b), *rest)]) for a, b in self._source_runs(first)]
        if not parts:
            return np.asarray(self.source[(slice(0, 0), *rest)])
        return np.concatenate(parts, axis=0)


def select_manifest(manifest: Manifest, indices: Sequence[int]) -> Manifest:
    """``manifest`` with only the frame records ``indices`` (manifest order kept)."""
    return manifest.model_copy(update={"frames": [manifest.frames[int(i)] for i in indices]})


def select_frames(frames: ArrayLike3D, manifest: Manifest, indices: Sequence[int]) -> tuple[SelectedFrames, Manifest]:
    """(view of frames ``indices``, manifest of those frames): what the characterization reads for
    a session whose station took only those frames. ``indices``: strictly increasing."""
    view = SelectedFrames(frames, indices)
    if int(frames.shape[0]) != len(manifest.frames):
        raise ValueError(f"frames of session {manifest.session_id!r}: {frames.shape[0]} frames for "
                         f"{len(manifest.frames)} manifest records")
    return view, select_manifest(manifest, view.indices.tolist())
