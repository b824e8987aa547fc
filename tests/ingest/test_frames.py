"""The frames of a session on several threads (:mod:`sensorfleet.ingest.frames`): the same
records, checksums, problems and stored bytes as on one thread, in manifest order."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr

from sensorfleet.config import Paths
from sensorfleet.ingest import ingest_session
from sensorfleet.ingest.frames import frame_threads
from tests.ingest.conftest import DAY

POINTS = [("dark", 0.01, 0.0), ("flat", 0.01, 400.0), ("flat", 0.01, 1600.0), ("flat", 0.01, 3000.0)]


def _group(paths: Paths, sid: str) -> tuple[dict[str, object], np.ndarray]:
    group = paths.captures / DAY / f"{sid}.zarr"
    attrs = json.loads((group / "zarr.json").read_text())["attributes"]
    return attrs, np.asarray(zarr.open_array(str(group / "frames"), mode="r")[:])


@pytest.mark.parametrize("pixel_format", ["png", "raw12_mipi"])
def test_threads_store_the_same_session_as_one_thread(
        tmp_path: Path, make_session: Callable[..., Path], pixel_format: str) -> None:
    results = []
    for threads in (1, 3):
        paths = Paths(root=tmp_path / f"data{threads}", landing=tmp_path / f"landing{threads}")
        d = make_session(paths.landing, "S1", pixel_format=pixel_format, points=POINTS, per_point=3, seed=5)
        r = ingest_session(d, paths, threads=threads)
        assert r.status == "ingested"
        results.append((r, *_group(paths, "S1")))
    (r1, attrs1, frames1), (r3, attrs3, frames3) = results
    assert r1.content_hash == r3.content_hash and r1.bytes_in == r3.bytes_in
    volatile = {"mtime_ns", "ctime_ns", "inode"}
    strip = [[{k: v for k, v in rec.items() if k not in volatile} for rec in a["frames"]]  # type: ignore[attr-defined]
             for a in (attrs1, attrs3)]
    assert strip[0] == strip[1]
    assert [rec["index"] for rec in attrs3["frames"]] == list(range(12))  # type: ignore[index]
    np.testing.assert_array_equal(frames1, frames3)


def test_every_bad_frame_is_listed_in_manifest_order_and_nothing_is_kept(
        paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1", pixel_format="png", points=POINTS, per_point=3, seed=5)
    for name in ("frame_010.raw", "frame_004.raw", "frame_007.raw"):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: len(data) - 40])  # a truncated PNG
    r = ingest_session(d, paths, threads=3)
    assert r.status == "rejected"
    assert [rej.file for rej in r.rejections] == ["frame_004.raw", "frame_007.raw", "frame_010.raw"]
    assert not (paths.captures / DAY / "S1.zarr").exists()
    assert list((paths.captures / DAY / ".tmp").iterdir()) == []


def test_frame_threads() -> None:
    assert frame_threads(4, 2) == 2
    assert frame_threads(0, 5) == 1
    assert 1 <= frame_threads(None, 1000)


def test_a_failing_frame_stops_the_others_and_leaves_no_write_in_flight(
        paths: Paths, make_session: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """An error that is not the input's (a full disk) stops the frames not yet started, and every
    running frame ends before the temporary group is removed: nothing is left behind."""
    from sensorfleet.ingest import store
    from sensorfleet.ingest.session import StorageError

    d = make_session(paths.landing, "S1", pixel_format="raw12_mipi", points=POINTS, per_point=6, seed=2)
    calls: list[int] = []
    real = store.FrameWriter.write

    def full_disk(self: store.FrameWriter, index: int, frame: np.ndarray) -> None:
        calls.append(index)
        if index == 2:
            raise OSError(28, "No space left on device", "chunk")
        time.sleep(0.05)  # a slow disk: the frames after the failing one are still queued
        real(self, index, frame)

    monkeypatch.setattr(store.FrameWriter, "write", full_disk)
    with pytest.raises(StorageError, match="no space left on device"):
        ingest_session(d, paths, threads=2)
    assert len(calls) < 12  # the frames queued behind the failure were dropped, not processed
    assert not (paths.captures / DAY / "S1.zarr").exists()
    assert list((paths.captures / DAY / ".tmp").iterdir()) == []
