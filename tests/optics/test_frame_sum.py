"""The optics step's frame sums read a chunk several frames deep once, not once per frame."""

from __future__ import annotations

from pathlib import Path

import numcodecs.blosc
import numpy as np
import pytest

from sensorfleet.ingest import store
from sensorfleet.optics.session import _frame_sum, chunk_groups


def test_chunk_groups_gather_the_frames_of_each_chunk() -> None:
    assert chunk_groups(list(range(10)), 6) == [(0, [0, 1, 2, 3, 4, 5]), (1, [6, 7, 8, 9])]
    assert chunk_groups([12, 3, 4, 5, 9, 10, 11], 6) == [(0, [3, 4, 5]), (1, [9, 10, 11]), (2, [12])]
    assert chunk_groups([5, 1, 2], 1) == [(1, [1]), (2, [2]), (5, [5])]
    assert chunk_groups([2, 2], 4) == [(0, [2, 2])]  # a repeated frame counts again, as a sum does
    assert chunk_groups([], 4) == []


@pytest.mark.parametrize("indices", [list(range(18)), [1, 2, 3, 9, 10], [7], [17, 0, 8], [16, 16]])
def test_frame_sum_equals_numpy_and_decompresses_each_chunk_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, indices: list[int]
) -> None:
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 4096, size=(18, 48, 40), dtype=np.uint16)  # the last chunk 2 deep
    _, arr = store.create_frames_group(tmp_path / "g.zarr", 18, 48, 40, depth=4)
    arr[:] = frames
    reader = store.FrameReader(arr, threads=1)
    calls: list[str] = []
    decompress, partial = numcodecs.blosc.decompress, store._decompress_frames

    def whole(*args: object) -> object:
        calls.append("whole")
        return decompress(*args)

    def frames_only(data: bytes, out: np.ndarray, wanted: range) -> bool:
        done = partial(data, out, wanted)
        calls.append("partial" if done else "refused")
        return done

    monkeypatch.setattr(numcodecs.blosc, "decompress", whole)
    monkeypatch.setattr(store, "_decompress_frames", frames_only)
    total = _frame_sum(reader, indices)
    assert np.array_equal(total, frames[indices].astype(np.uint64).sum(axis=0))
    # one row band: one file per chunk touched, only the blocks of its wanted frames decompressed
    assert calls == ["partial"] * len({i // 4 for i in indices})


def test_read_chunk_into_reads_a_whole_chunk_and_names_a_missing_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    frames = rng.integers(0, 4096, size=(6, 48, 40), dtype=np.uint16)
    _, arr = store.create_frames_group(tmp_path / "g.zarr", 6, 48, 40, depth=4)
    arr[:] = frames
    reader = store.FrameReader(arr, threads=1)
    out = np.empty((4, 48, 40), np.uint16)
    reader.read_chunk_into(out, 1)  # the last chunk: frames 4-5 and two frames of padding
    assert np.array_equal(out[:2], frames[4:6])
    with pytest.raises(ValueError, match="expected a C-contiguous"):
        reader.read_chunk_into(np.empty((2, 48, 40), np.uint16), 0)
    (tmp_path / "g.zarr" / "frames" / "c.0.0.0").unlink()
    with pytest.raises(store.IncompleteSessionError, match=r"chunk file missing \(frames 0-3"):
        reader.read_chunk_into(out, 0)
    store.FrameReader(arr, strict=False, threads=1).read_chunk_into(out, 0)
    assert not out.any()  # a non-strict reader reads a missing chunk as the fill value


def test_read_chunk_into_decompresses_only_the_wanted_frames(tmp_path: Path) -> None:
    """``frames`` of a chunk are decompressed alone (the rest of ``out`` is left as it was),
    bit for bit; a chunk that is not a typesize-2 blosc buffer of ``out``'s size is refused."""
    rng = np.random.default_rng(8)
    frames = rng.integers(0, 4096, size=(8, 96, 80), dtype=np.uint16)
    _, arr = store.create_frames_group(tmp_path / "g.zarr", 8, 96, 80, depth=8)
    arr[:] = frames
    reader = store.FrameReader.open(tmp_path / "g.zarr" / "frames", threads=1)
    for wanted in (range(0, 8), range(2, 6), range(7, 8), range(0, 1)):
        out = np.full((8, 96, 80), 7, np.uint16)
        reader.read_chunk_into(out, 0, wanted)
        assert np.array_equal(out[wanted.start:wanted.stop], frames[wanted.start:wanted.stop])
        assert (out[:wanted.start] == 7).all() and (out[wanted.stop:] == 7).all()
    data = (tmp_path / "g.zarr" / "frames" / "c.0.0.0").read_bytes()
    out = np.zeros((8, 96, 80), np.uint16)
    assert not store._decompress_frames(data, out[:4], range(0, 2))  # another size
    assert not store._decompress_frames(data[:10], out, range(0, 2))  # no whole header
    assert not store._decompress_frames(data, out, range(3, 3))
    assert store._decompress_frames(data, out, range(1, 3)) and np.array_equal(out[1:3], frames[1:3])


def test_frame_sum_of_a_several_band_array_with_deep_chunks(tmp_path: Path) -> None:
    """Frames taller than one row band (the reader's general path) sum as numpy does."""
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 4096, size=(5, store.CHUNK_ROWS + 8, 6), dtype=np.uint16)
    _, arr = store.create_frames_group(tmp_path / "g.zarr", 5, store.CHUNK_ROWS + 8, 6, depth=2)
    arr[:] = frames
    reader = store.FrameReader(arr, threads=1)
    for indices in ([0, 1, 2, 3, 4], [4], [1, 3]):
        assert np.array_equal(_frame_sum(reader, indices), frames[indices].astype(np.uint64).sum(axis=0))
