"""Change detection a restored mtime cannot fool, and a session whose capture day changes is
moved whole: its old group, maps group and rows leave the old day in the same run."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sensorfleet.config import Paths
from sensorfleet.ingest import ingest_day, ingest_session, list_ingested
from sensorfleet.ingest import session as session_mod
from sensorfleet.tables import read_partition, write_partition

DAY = "2026-03-14"
NEW_DAY = "2026-03-16"


def test_in_place_change_with_size_and_mtime_restored_is_seen(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1")
    first = ingest_session(d, paths)
    frame = d / "frame_002.raw"
    st = frame.stat()
    data = bytearray(frame.read_bytes())
    data[10] ^= 0x01  # one bit, same size
    time.sleep(0.01)
    frame.write_bytes(bytes(data))
    os.utime(frame, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (frame.stat().st_size, frame.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    second = ingest_session(d, paths)
    assert second.status == "rewritten"
    assert second.content_hash != first.content_hash


def test_untouched_session_is_not_hashed(paths: Paths, make_session: Callable[..., Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap check (size, mtime_ns, ctime_ns, inode per frame) decides without reading a frame."""
    d = make_session(paths.landing, "S1")
    ingest_session(d, paths)

    def no_hash(*_: object) -> str:
        raise AssertionError("hashed an untouched session")

    monkeypatch.setattr(session_mod, "_hash_files", no_hash)
    assert ingest_session(d, paths).status == "unchanged"


def test_replaced_by_rename_with_same_bytes_is_hashed_and_unchanged(paths: Paths, make_session: Callable[..., Path]) -> None:
    """A new inode (a station re-copied the file) costs a hash, and equal content stays unchanged."""
    d = make_session(paths.landing, "S1")
    ingest_session(d, paths)
    frame = d / "frame_001.raw"
    st = frame.stat()
    copy = d / ".frame_001.raw.tmp"
    copy.write_bytes(frame.read_bytes())
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(copy, frame)
    assert frame.stat().st_ino != st.st_ino
    assert ingest_session(d, paths).status == "unchanged"


def _move(d: Path, day: str) -> None:
    m = json.loads((d / "manifest.json").read_text())
    m["captured_at"] = f"{day}T08:00:00+00:00"
    (d / "manifest.json").write_text(json.dumps(m))


def _characterized(paths: Paths, table_rows: Callable[..., object], sids: list[str]) -> None:
    """A maps group and a module_stats row per session, as the characterization leaves them."""
    for sid in sids:
        (paths.maps / DAY / f"{sid}.zarr").mkdir(parents=True)
        (paths.maps / DAY / f"{sid}.zarr" / "zarr.json").write_text("{}")
    write_partition(paths.tables, "module_stats", DAY, table_rows("module_stats", [
        {"session_id": sid, "module_id": f"M-{sid}"} for sid in sids]))


def _check_tables_point_at_groups(paths: Paths, *days: str) -> None:
    for day in days:
        sessions = read_partition(paths.tables, "sessions", day)
        for path in sessions["zarr_path"].drop_nulls() if sessions.height else []:
            assert Path(path).is_dir(), path


def test_moved_session_leaves_the_old_day_in_the_same_run(paths: Paths, make_session: Callable[..., Path],
                                                         table_rows: Callable[..., object]) -> None:
    moving, staying = make_session(paths.landing, "S1"), make_session(paths.landing, "S2", seed=1)
    ingest_day(paths, DAY, workers=1)
    _characterized(paths, table_rows, ["S1", "S2"])
    _move(moving, NEW_DAY)

    report = ingest_day(paths, NEW_DAY, workers=1)  # only the new day runs
    (result,) = report.results
    assert (result.status, result.moved_from) == ("rewritten", (DAY,))
    assert [g.name for g in list_ingested(paths, DAY)] == ["S2.zarr"]
    assert [g.name for g in list_ingested(paths, NEW_DAY)] == ["S1.zarr"]
    assert not (paths.maps / DAY / "S1.zarr").exists() and (paths.maps / DAY / "S2.zarr").exists()
    for table in ("sessions", "captures", "module_stats"):
        assert set(read_partition(paths.tables, table, DAY)["session_id"]) == {"S2"}, table
    assert set(read_partition(paths.tables, "sessions", NEW_DAY)["session_id"]) == {"S1"}
    _check_tables_point_at_groups(paths, DAY, NEW_DAY)
    assert staying.is_dir()


def test_interrupted_move_is_finished_by_the_next_run(paths: Paths, make_session: Callable[..., Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    d = make_session(paths.landing, "S1")
    ingest_day(paths, DAY, workers=1)
    _move(d, NEW_DAY)

    def crash(*_: object) -> tuple[str, ...]:
        raise KeyboardInterrupt("killed after the publish, before the old day was cleaned")

    monkeypatch.setattr(session_mod, "_remove_moved", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest_session(d, paths)
    monkeypatch.undo()
    assert list_ingested(paths, DAY) and list_ingested(paths, NEW_DAY)  # both: the crash window
    _check_tables_point_at_groups(paths, DAY)  # the old day's rows still have their group

    result = ingest_day(paths, NEW_DAY, workers=1).results[0]
    assert (result.status, result.moved_from) == ("unchanged", (DAY,))
    assert list_ingested(paths, DAY) == []
    assert read_partition(paths.tables, "sessions", DAY).height == 0
