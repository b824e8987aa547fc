"""Zarr store: contents, attributes, atomic publish, crash recovery, idempotence, rewrites."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from zarr.codecs import BloscCodec

from sensorfleet.config import Paths
from sensorfleet.ingest import (
    IncompleteSessionError,
    content_hash,
    ingest_day,
    ingest_session,
    list_ingested,
    open_session,
    store,
)
from sensorfleet.ingest import frames as frames_mod
from sensorfleet.ingest import session as session_mod

DAY = "2026-03-14"
_open: Any = open_session  # zarr's Group/Array/attribute types are unions; tests index freely


def test_frames_and_attributes(paths: Paths, make_session: Callable[..., Path],
                               frames_of: Callable[..., list[np.ndarray]]) -> None:
    d = make_session(paths.landing, "S1", width=70, height=600, seed=5)
    when = datetime(2026, 3, 15, 8, 0, tzinfo=UTC)
    result = ingest_session(d, paths, ingested_at=when)
    assert result.status == "ingested"
    truth = frames_of(70, 600, 12, [("dark", 0.01, 0.0), ("flat", 0.01, 400.0), ("flat", 0.01, 1600.0)], 2, 5)
    g = _open(paths, DAY, "S1")
    arr = g["frames"]
    assert arr.shape == (6, 600, 70) and arr.dtype == np.uint16
    assert arr.chunks == (6, 512, 70)  # small bands: the session's 6 frames stacked in one chunk
    assert g.attrs.asdict()["chunks"] == [6, 512, 70]
    assert isinstance(arr.compressors[0], BloscCodec)
    assert np.array_equal(arr[:], np.stack(truth))
    a = g.attrs.asdict()
    assert a["complete"] is True
    assert a["manifest"]["session_id"] == "S1" and a["source_dir"] == str(d)
    assert a["ingested_at"] == when.isoformat() and a["history"] == []
    assert a["content_hash"] == result.content_hash
    recs = a["frames"]
    assert [r["op_index"] for r in recs] == [0, 0, 1, 1, 2, 2]
    for rec, frame in zip(recs, truth, strict=True):
        assert rec["mean_dn"] == pytest.approx(frame.mean(), rel=1e-12)
        assert rec["std_dn"] == pytest.approx(frame.std(), rel=1e-9)
        assert (rec["min_dn"], rec["max_dn"]) == (int(frame.min()), int(frame.max()))
        assert rec["saturated_fraction"] == pytest.approx(np.mean(frame >= 4095))
    import xxhash

    raw = [(d / r["file"]).read_bytes() for r in recs]
    assert [r["checksum_xxh3_128"] for r in recs] == [xxhash.xxh3_128_hexdigest(b) for b in raw]
    manifest_bytes = (d / "manifest.json").read_bytes()
    expected_hash = xxhash.xxh3_128(manifest_bytes + b"".join(xxhash.xxh3_128_digest(b) for b in raw)).hexdigest()
    assert a["content_hash"] == content_hash(manifest_bytes, [xxhash.xxh3_128_digest(b) for b in raw])
    assert a["content_hash"] == "xxh3_128:" + expected_hash
    assert result.bytes_in == sum(len(b) for b in raw) == a["bytes_in"]
    assert result.bytes_stored == a["bytes_stored"] > 0


def test_saturated_fraction(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "sat", points=[("flat", 0.01, 3200.0)], bit_depth=10, per_point=2)
    ingest_session(d, paths)
    frame = _open(paths, DAY, "sat")["frames"][0]
    rec = _open(paths, DAY, "sat").attrs["frames"][0]
    assert rec["saturated_fraction"] == pytest.approx(np.mean(frame >= 1023))
    assert 0 < rec["saturated_fraction"] < 1


def test_readers_ignore_incomplete_and_temp(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1")
    ingest_session(d, paths)
    day = paths.captures / DAY
    shutil.copytree(day / "S1.zarr", day / "half.zarr")
    meta = json.loads((day / "half.zarr" / "zarr.json").read_text())
    meta["attributes"]["complete"] = False
    (day / "half.zarr" / "zarr.json").write_text(json.dumps(meta))
    shutil.copytree(day / "S1.zarr", day / ".tmp" / "S2-0123456789abcdef0123456789abcdef.zarr")
    assert [p.name for p in list_ingested(paths, DAY)] == ["S1.zarr"]
    with pytest.raises(IncompleteSessionError, match="not marked complete"):
        open_session(paths, DAY, "half")
    with pytest.raises(IncompleteSessionError, match="missing"):
        open_session(paths, DAY, "S2")
    with pytest.raises(Exception):  # noqa: B017 - zarr raises its own read-only error type
        _open(paths, DAY, "S1")["frames"][0] = 1


def test_listed_attributes_serve_while_the_group_holds_them(paths: Paths, make_session: Callable[..., Path]) -> None:
    """``ingested_groups`` reads each group's attributes once; ``open_captures`` takes them while
    the group's zarr.json is the one read, and reads it again once it changed."""
    from sensorfleet.emva.session import open_captures

    ingest_session(make_session(paths.landing, "S1"), paths)
    ingest_session(make_session(paths.landing, "S0"), paths)
    listed = store.ingested_groups(paths, DAY)
    assert [p.name for p, _ in listed] == ["S0.zarr", "S1.zarr"] == [p.name for p in list_ingested(paths, DAY)]
    group, attrs = listed[1]
    assert attrs.current(group) and attrs.attrs == store.read_group_attrs(group)
    _, manifest, got = open_captures(group, attrs)
    assert got == attrs.attrs and got is not attrs.attrs and manifest.session_id == "S1"
    meta = json.loads((group / "zarr.json").read_text())
    meta["attributes"]["content_hash"] = "changed"
    (group / "zarr.json").write_text(json.dumps(meta))
    assert not attrs.current(group) and not attrs.current(group.parent / "missing.zarr")
    assert open_captures(group, attrs)[2]["content_hash"] == "changed"  # read again


def _crash_after(n_frames: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make decode_frame_stats raise after ``n_frames`` frames, as if the process died mid-write."""
    real = frames_mod.decode_frame_stats
    calls = {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> object:
        calls["n"] += 1
        if calls["n"] > n_frames:
            raise KeyboardInterrupt("killed mid-write")
        return real(*args, **kwargs)

    monkeypatch.setattr(frames_mod, "decode_frame_stats", dying)


def test_crash_mid_write_leaves_nothing_visible_and_next_run_finishes(
        paths: Paths, make_session: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    d = make_session(paths.landing, "S1")
    _crash_after(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        ingest_session(d, paths)
    monkeypatch.undo()
    leftovers = list((paths.captures / DAY / ".tmp").iterdir())
    assert len(leftovers) == 1 and not store.is_complete(leftovers[0])
    assert list_ingested(paths, DAY) == []
    with pytest.raises(IncompleteSessionError):
        open_session(paths, DAY, "S1")
    report = ingest_day(paths, DAY, workers=1)
    assert [r.status for r in report.results] == ["ingested"]
    assert list((paths.captures / DAY / ".tmp").iterdir()) == []
    assert _open(paths, DAY, "S1")["frames"].shape[0] == 6


def test_crash_between_renames_of_a_rewrite_restores_then_rewrites(
        paths: Paths, make_session: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    d = make_session(paths.landing, "S1", seed=1)
    first = ingest_session(d, paths)
    (d / "frame_000.raw").write_bytes((d / "frame_001.raw").read_bytes())  # new content
    real_rename = os.rename
    calls = {"n": 0}

    def rename(src: str | Path, dst: str | Path) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # old group is aside, new one not yet in
            raise KeyboardInterrupt("killed between renames")
        real_rename(src, dst)

    monkeypatch.setattr(store.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        ingest_session(d, paths)
    monkeypatch.undo()
    assert list_ingested(paths, DAY) == []  # nothing half-done is visible
    # the old group waits aside; a reader-visible scan recovers it before rewriting
    assert store.clean_stale_temp(paths, DAY) == ["S1"]
    assert _open(paths, DAY, "S1").attrs["content_hash"] == first.content_hash
    again = ingest_session(d, paths)
    assert again.status == "rewritten"
    hist = _open(paths, DAY, "S1").attrs["history"]
    assert [h["content_hash"] for h in hist] == [first.content_hash]
    assert list((paths.captures / DAY / ".tmp").iterdir()) == []


def test_second_run_is_unchanged_and_does_no_work(paths: Paths, make_session: Callable[..., Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        make_session(paths.landing, f"S{i}", seed=i)
    first = ingest_day(paths, DAY, workers=1)
    assert first.n_ingested == 3
    mtimes = {p: (p / "zarr.json").stat().st_mtime_ns for p in list_ingested(paths, DAY)}

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged session must not be decoded")

    monkeypatch.setattr(frames_mod, "decode_frame_stats", no_decoding)
    monkeypatch.setattr(session_mod, "_hash_files", no_decoding)
    second = ingest_day(paths, DAY, workers=1)
    assert [r.status for r in second.results] == ["unchanged"] * 3
    assert {p: (p / "zarr.json").stat().st_mtime_ns for p in list_ingested(paths, DAY)} == mtimes
    assert second.n_frames == first.n_frames and second.bytes_stored == first.bytes_stored


def test_touched_but_equal_files_are_unchanged(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1")
    ingest_session(d, paths)
    os.utime(d / "frame_002.raw", ns=(1, 1))
    assert ingest_session(d, paths).status == "unchanged"


def test_changed_content_is_rewritten_and_recorded(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1", seed=1)
    first = ingest_session(d, paths, ingested_at=datetime(2026, 3, 15, tzinfo=UTC))
    (d / "frame_000.raw").write_bytes((d / "frame_001.raw").read_bytes())
    second = ingest_session(d, paths, ingested_at=datetime(2026, 3, 16, tzinfo=UTC))
    assert second.status == "rewritten" and second.content_hash != first.content_hash
    g = _open(paths, DAY, "S1")
    assert np.array_equal(g["frames"][0], g["frames"][1])
    assert g.attrs["history"] == [{
        "content_hash": first.content_hash,
        "ingested_at": "2026-03-15T00:00:00+00:00",
        "replaced_at": "2026-03-16T00:00:00+00:00",
    }]
    assert sorted(p.name for p in (paths.captures / DAY).iterdir()) == [".tmp", "S1.zarr"]


def test_new_capture_day_moves_the_group(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1")
    ingest_session(d, paths)
    m = json.loads((d / "manifest.json").read_text())
    m["captured_at"] = "2026-03-15T01:00:00+00:00"
    (d / "manifest.json").write_text(json.dumps(m))
    r = ingest_session(d, paths)
    assert (r.status, r.capture_date) == ("rewritten", "2026-03-15")
    assert list_ingested(paths, DAY) == []
    assert [p.name for p in list_ingested(paths, "2026-03-15")] == ["S1.zarr"]


def test_reused_session_id_from_another_folder(tmp_path: Path, paths: Paths,
                                               make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1", seed=1)
    first = ingest_session(d, paths)
    other_landing = tmp_path / "landing2"
    same = make_session(other_landing, "S1", seed=1)  # a byte-identical copy
    assert ingest_session(same, paths).status == "unchanged"
    different = make_session(tmp_path / "landing3", "S1", seed=2)
    r = ingest_session(different, paths)
    assert r.status == "rejected"
    (rej,) = r.rejections
    assert rej.file == "manifest.json"
    assert f"already ingested from {d} with different content" in rej.reason
    assert _open(paths, DAY, "S1").attrs["content_hash"] == first.content_hash


def test_parallel_workers_and_progress(paths: Paths, make_session: Callable[..., Path]) -> None:
    for i in range(3):
        make_session(paths.landing, f"S{i}", seed=i)
    seen: list[str] = []
    report = ingest_day(paths, DAY, workers=2, progress=lambda r: seen.append(str(r.session_id)))
    assert sorted(seen) == ["S0", "S1", "S2"]
    assert report.n_ingested == 3 and report.n_frames == 18
    assert report.compression_ratio == pytest.approx(report.bytes_in / report.bytes_stored)


@pytest.mark.parametrize("height", [512, 1030])
def test_frame_writer_matches_zarr(tmp_path: Path, height: int) -> None:
    """Chunks written directly read back through zarr bit for bit, edge band included, and
    equal what zarr's own write path (used for other stores) stores."""
    import zarr

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 4096, size=(3, height, 40), dtype=np.uint16)
    _, direct = store.create_frames_group(tmp_path / "direct.zarr", 3, height, 40)
    writer = store.FrameWriter(direct)
    assert writer.folder is not None
    for i, f in enumerate(frames):
        writer.write(i, f)
    mem = zarr.create_array(zarr.storage.MemoryStore(), shape=frames.shape, dtype="uint16",
                            chunks=direct.chunks, compressors=store.compressors(), fill_value=0)
    fallback = store.FrameWriter(mem)
    assert fallback.folder is None
    for i, f in enumerate(frames):
        fallback.write(i, f)
    back = zarr.open_array(str(tmp_path / "direct.zarr" / "frames"), mode="r")
    assert np.array_equal(back[:], frames) and np.array_equal(mem[:], frames)
    assert np.array_equal(back[:, 500:530, :], frames[:, 500:530, :])


@pytest.mark.parametrize("reuse_buffer", [True, False])
def test_frame_writer_chunk_bytes_equal_numcodecs(tmp_path: Path, reuse_buffer: bool) -> None:
    """The chunk files hold exactly what numcodecs' Blosc (zarr's codec) makes of each band,
    whether compressed into the reused buffer (c-blosc's ``blosc_compress_ctx``) or not."""
    rng = np.random.default_rng(11)
    frames = np.clip(rng.normal(500, 15, size=(2, 700, 96)), 0, 4095).astype(np.uint16)
    _, arr = store.create_frames_group(tmp_path / "g.zarr", 2, 700, 96)
    writer = store.FrameWriter(arr)
    if reuse_buffer:
        assert writer._compress is not None  # numcodecs exports c-blosc's symbols on this platform
    else:
        writer._compress = None
    for i, f in enumerate(frames):
        writer.write(i, f)
    assert writer.folder is not None
    for i, f in enumerate(frames):
        for band, y0 in enumerate((0, 512)):
            chunk = np.zeros((512, 96), np.uint16)
            chunk[: min(512, 700 - y0)] = f[y0:y0 + 512]
            stored = (writer.folder / arr.metadata.encode_chunk_key((i, band, 0))).read_bytes()
            assert stored == bytes(writer.codec.encode(chunk))
    # flat chunk keys: no folder per frame and band
    assert sorted(p.name for p in writer.folder.iterdir()) == ["c.0.0.0", "c.0.1.0", "c.1.0.0", "c.1.1.0", "zarr.json"]
    import zarr

    assert np.array_equal(zarr.open_array(str(tmp_path / "g.zarr" / "frames"), mode="r")[:], frames)


def test_every_blosc_library_writes_the_same_frames() -> None:
    """The writer prefers python-blosc's AVX2 build of c-blosc over numcodecs' SSE2 build; both
    are c-blosc 1.x and must make the same bytes of a chunk (zarr reads them through numcodecs)."""
    from numcodecs import Blosc

    libs = store.blosc_libraries()
    assert libs[-1].endswith(".so") and "numcodecs" in libs[-1]
    chosen = store.blosc_compress_ctx()
    assert chosen is not None and chosen[1] == libs[0]
    rng = np.random.default_rng(5)
    chunk = np.clip(rng.normal(480, 14, size=(64, 250)), 0, 4095).astype(np.uint16)
    want = bytes(Blosc(cname="lz4", clevel=store.CLEVEL, shuffle=Blosc.BITSHUFFLE, blocksize=0).encode(chunk))
    out = np.empty(chunk.nbytes + 16, np.uint8)
    for lib in libs:
        fn = store.load_compress_ctx(lib)
        assert fn is not None, lib
        n = fn(store.CLEVEL, 2, 2, chunk.nbytes, chunk.ctypes.data, out.ctypes.data, out.nbytes, b"lz4", 0, 1)
        assert out[:n].tobytes() == want, lib


def _reader_group(tmp_path: Path, n: int = 3, h: int = 700, w: int = 96, depth: int = 1) -> tuple[np.ndarray, Any]:
    import zarr

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 4096, size=(n, h, w), dtype=np.uint16)
    _, arr = store.create_frames_group(tmp_path / "r.zarr", n, h, w, depth)
    writer = store.FrameWriter(arr)
    for i, f in enumerate(frames):
        writer.write(i, f)
    return frames, zarr.open_group(str(tmp_path / "r.zarr"), mode="r")["frames"]


@pytest.mark.parametrize("depth", [1, 3])
def test_frame_reader_reads_what_zarr_reads(tmp_path: Path, depth: int) -> None:
    """Direct chunk reads give zarr's bytes for every kind of key the characterization uses
    (frame ranges x row bands, edge band, rows across a chunk border, column ranges, ints),
    with chunks one frame deep and several (frame ranges across and inside chunks)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    frames, arr = _reader_group(tmp_path, n=7 if depth > 1 else 3, depth=depth)
    n = frames.shape[0]
    reader = store.FrameReader(arr)
    assert reader.folder is not None and reader.shape == frames.shape and reader.chunks == arr.chunks
    for key in [(slice(None),), (slice(0, 2), slice(0, 512), slice(None)), (slice(1, 3), slice(512, 700), slice(None)),
                (slice(0, 3), slice(500, 530), slice(None)), (slice(None), slice(10, 690), slice(5, 60)),
                (1,), (2, slice(600, 700)), (-1, 511, slice(None)), (slice(2, 2),)]:
        got = reader[key]
        want = frames[key]
        assert got.shape == want.shape and np.array_equal(got, want), key

    for key in [(slice(3, 6),), (slice(3, 6), slice(0, 512)), (slice(1, 7), slice(512, 700)), (slice(2, 4),)]:
        assert np.array_equal(reader[key], frames[key]), key

    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, n), st.integers(0, n), st.integers(0, 700), st.integers(0, 700), st.integers(0, 96),
           st.integers(0, 96))
    def check(f0: int, f1: int, y0: int, y1: int, x0: int, x1: int) -> None:
        key = (slice(f0, f1), slice(y0, y1), slice(x0, x1))
        assert np.array_equal(reader[key], frames[key])

    check()


def test_frame_reader_missing_chunk_and_fallbacks(tmp_path: Path) -> None:
    """A missing chunk file is an error naming it (ingest writes every chunk); keys the reader
    does not handle (steps, index lists) go through zarr with the same result."""
    frames, arr = _reader_group(tmp_path)
    reader = store.FrameReader(arr)
    assert reader.folder is not None
    assert np.array_equal(reader[:, ::7, :], frames[:, ::7, :])
    assert np.array_equal(reader[[0, 2], 600:650], frames[[0, 2], 600:650])
    with pytest.raises(IndexError):
        reader[3]
    (reader.folder / arr.metadata.encode_chunk_key((1, 0, 0))).unlink()
    assert np.array_equal(reader[:, 512:], frames[:, 512:])  # the other band is whole
    with pytest.raises(store.IncompleteSessionError, match=r"c\.1\.0\.0: chunk file missing \(frame 1, rows 0-511\)"):
        reader[:, 100:200]
    lenient = store.FrameReader(arr, strict=False)  # zarr's rule: a missing chunk is fill values
    want = frames.copy()
    want[1, :512] = 0
    assert np.array_equal(lenient[:], want) and np.array_equal(lenient[:], np.asarray(arr[:]))


def test_frame_reader_keeps_reading_the_group_it_opened(tmp_path: Path) -> None:
    """A rewrite published while a reader is open (the folder renamed aside) does not mix the
    new frames into what the reader returns."""
    frames, arr = _reader_group(tmp_path)
    reader = store.FrameReader(arr)
    group = tmp_path / "r.zarr"
    os.rename(group, tmp_path / "aside.zarr")
    new = frames[::-1].copy()
    _, arr2 = store.create_frames_group(group, *new.shape)
    writer = store.FrameWriter(arr2)
    for i, f in enumerate(new):
        writer.write(i, f)
    assert np.array_equal(reader[:], frames)
    shutil.rmtree(tmp_path / "aside.zarr")
    with pytest.raises(store.IncompleteSessionError):
        reader[:]


def test_frame_reader_falls_back_to_zarr_for_other_layouts(tmp_path: Path) -> None:
    import zarr

    data = np.arange(2 * 40 * 30, dtype=np.uint16).reshape(2, 40, 30)
    arr = zarr.create_array(str(tmp_path / "other.zarr"), shape=data.shape, dtype="uint16", chunks=(2, 16, 16))
    arr[...] = data
    reader = store.FrameReader(arr)
    assert reader.folder is None
    assert np.array_equal(reader[:, 5:35, :], data[:, 5:35, :])


def test_frame_reader_read_into_a_reused_buffer(tmp_path: Path) -> None:
    frames, arr = _reader_group(tmp_path)
    reader = store.FrameReader(arr)
    buf = np.full((2, 300, 96), 7, np.uint16)
    reader.read_into(buf, slice(1, 3), slice(400, 700))
    assert np.array_equal(buf, frames[1:3, 400:700])
    with pytest.raises(ValueError, match=r"out: expected \(2, 10, 96\) uint16"):
        reader.read_into(buf, slice(0, 2), slice(0, 10))


def test_frames_per_chunk() -> None:
    """Small sensors stack frames up to ~4 MB of band per chunk (at most 8, at most the session);
    a 12 MP band is one frame deep."""
    assert store.frames_per_chunk(64, 3000, 4000) == 1
    assert store.frames_per_chunk(302, 480, 640) == 6
    assert store.frames_per_chunk(4, 480, 640) == 4
    assert store.frames_per_chunk(100, 48, 64) == store.MAX_FRAMES_PER_CHUNK
    assert store.frames_per_chunk(0, 48, 64) == 1
    assert store.frame_chunks(480, 640, 6) == (6, 480, 640)


def test_deep_chunks_from_threads_in_any_order(tmp_path: Path) -> None:
    """Frames written in any order by writers on several threads, sharing one stage, make chunks
    three frames deep (the last one padded) holding exactly numcodecs' bytes of each stacked
    band, which read back through zarr and the reader bit for bit; a missing one is named."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    import zarr
    from numcodecs import Blosc

    rng = np.random.default_rng(17)
    frames = np.clip(rng.normal(700, 20, size=(7, 700, 40)), 0, 4095).astype(np.uint16)
    _, arr = store.create_frames_group(tmp_path / "d.zarr", 7, 700, 40, depth=3)
    assert arr.chunks == (3, 512, 40)
    stage = store.ChunkStage(7, 3, 700, 512, 40)
    order = list(range(7))
    random.Random(4).shuffle(order)

    def write(i: int) -> None:
        store.FrameWriter(arr, stage).write(i, frames[i])

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(write, order))
    folder = tmp_path / "d.zarr" / "frames"
    assert sorted(p.name for p in folder.glob("c.*")) == [f"c.{c}.{b}.0" for c in range(3) for b in range(2)]
    padded = np.zeros((9, 1024, 40), np.uint16)
    padded[:7, :700] = frames
    codec = Blosc(cname="lz4", clevel=store.CLEVEL, shuffle=Blosc.BITSHUFFLE, blocksize=0)
    for c in range(3):
        for b in range(2):
            want = bytes(codec.encode(np.ascontiguousarray(padded[3 * c:3 * c + 3, 512 * b:512 * b + 512])))
            assert (folder / f"c.{c}.{b}.0").read_bytes() == want
    back = zarr.open_array(str(folder), mode="r")
    assert np.array_equal(back[:], frames)
    reader = store.FrameReader(back)
    assert np.array_equal(reader[2:5, 100:600], frames[2:5, 100:600]) and np.array_equal(reader[6], frames[6])
    (folder / "c.1.0.0").unlink()
    with pytest.raises(store.IncompleteSessionError, match=r"c\.1\.0\.0: chunk file missing \(frames 3-5, rows 0-511\)"):
        reader[4, 10:20]
    assert np.array_equal(store.FrameReader(back, strict=False)[3:6, :512], np.zeros((3, 512, 40), np.uint16))


def test_a_frame_decoded_into_its_slot_is_not_copied(tmp_path: Path) -> None:
    """One-band frames can be decoded straight into their chunk's buffer (the ingest does): the
    stage then writes the same chunk as from a copied frame."""
    import zarr

    rng = np.random.default_rng(23)
    frames = rng.integers(0, 4096, size=(5, 30, 16), dtype=np.uint16)
    _, arr = store.create_frames_group(tmp_path / "s.zarr", 5, 30, 16, depth=2)
    stage = store.ChunkStage(5, 2, 30, 30, 16)
    writer = store.FrameWriter(arr, stage)
    for i in (1, 0, 4, 2, 3):
        slot = stage.slot(i)
        assert slot is not None and slot.shape == (30, 16) and slot.flags.c_contiguous
        slot[...] = frames[i]
        writer.write(i, slot)
    assert np.array_equal(zarr.open_array(str(tmp_path / "s.zarr" / "frames"), mode="r")[:], frames)
    assert store.ChunkStage(5, 2, 700, 512, 16).slot(0) is None  # two bands: frames are copied in


@pytest.mark.parametrize("depth", [1, 3])
def test_frame_reader_open_takes_the_layout_from_zarr_json(tmp_path: Path, depth: int) -> None:
    """``FrameReader.open`` reads an ingest-made array's layout from its ``zarr.json`` (zarr is
    opened only for a key the reader hands to it) and reads what zarr reads; another layout, or
    metadata it does not know, goes through zarr; a missing array raises as zarr does."""
    import zarr

    frames, arr = _reader_group(tmp_path, n=5, depth=depth)
    folder = tmp_path / "r.zarr" / "frames"
    reader = store.FrameReader.open(folder)
    assert reader._arr is None and reader._layout == store.DirectLayout.of_array(arr)
    assert reader.folder == folder and reader.shape == frames.shape and reader.chunks == arr.chunks
    assert np.array_equal(reader[1:4, 100:600], frames[1:4, 100:600]) and reader._arr is None
    assert np.array_equal(reader[[0, 2], ::5], frames[[0, 2], ::5]) and reader._arr is not None  # through zarr
    (folder / arr.metadata.encode_chunk_key((1, 0, 0))).unlink()
    with pytest.raises(store.IncompleteSessionError, match=rf"{arr.metadata.encode_chunk_key((1, 0, 0))}: chunk file"):
        store.FrameReader.open(folder)[:, :10]

    other = zarr.create_array(str(tmp_path / "other.zarr"), shape=(2, 40, 30), dtype="uint16", chunks=(2, 16, 16))
    other[...] = np.arange(2 * 40 * 30, dtype=np.uint16).reshape(2, 40, 30)
    assert store.DirectLayout.of_folder(tmp_path / "other.zarr") is None
    through_zarr = store.FrameReader.open(tmp_path / "other.zarr")
    assert through_zarr.folder is None and np.array_equal(through_zarr[:, 3:20], other[:, 3:20])
    meta = json.loads((folder / "zarr.json").read_text())
    meta["chunk_key_encoding"] = {"name": "v2", "configuration": {"separator": "."}}
    (folder / "zarr.json").write_text(json.dumps(meta))
    assert store.DirectLayout.of_folder(folder) is None  # chunk keys it does not spell
    with pytest.raises(FileNotFoundError):
        store.FrameReader.open(tmp_path / "missing.zarr")
