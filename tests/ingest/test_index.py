"""The session index: which days hold a group of a session id (sensorfleet.ingest.index)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from sensorfleet.config import Paths
from sensorfleet.ingest import index, ingest_session, store

DAY = "2026-03-14"


def _entry(paths: Paths, sid: str) -> list[str]:
    (path,) = index_root_files(paths, sid)
    return list(json.loads(path.read_text())["days"])


def index_root_files(paths: Paths, sid: str) -> list[Path]:
    return list(index.index_root(paths).glob(f"*/{sid}.json"))


def test_ingest_builds_and_keeps_the_index(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1")
    assert ingest_session(d, paths).status == "ingested"
    assert index.is_built(paths)
    assert _entry(paths, "S1") == [DAY]
    assert store.find_groups(paths, "S1") == [store.group_path(paths, DAY, "S1")]
    # the capture day changes: the group moves and the entry follows it
    m = json.loads((d / "manifest.json").read_text())
    m["captured_at"] = "2026-03-15T01:00:00+00:00"
    (d / "manifest.json").write_text(json.dumps(m))
    assert ingest_session(d, paths).status == "rewritten"
    assert _entry(paths, "S1") == ["2026-03-15"]
    assert store.find_groups(paths, "S1") == [store.group_path(paths, "2026-03-15", "S1")]


def test_index_is_built_from_what_is_on_disk(tmp_path: Path, paths: Paths,
                                             make_session: Callable[..., Path]) -> None:
    """Data ingested before the index existed (or with its folder deleted) is indexed by the
    next ingest, so a reused id from another folder is still refused."""
    d = make_session(paths.landing, "S1", seed=1)
    ingest_session(d, paths)
    shutil.rmtree(index.index_root(paths))
    assert not index.is_built(paths)
    assert store.find_groups(paths, "S1") == [store.group_path(paths, DAY, "S1")]  # scan fallback
    other = make_session(tmp_path / "landing2", "S2", seed=3)
    assert ingest_session(other, paths).status == "ingested"  # builds the index first
    assert index.is_built(paths) and _entry(paths, "S1") == [DAY] and _entry(paths, "S2") == [DAY]
    different = make_session(tmp_path / "landing3", "S1", seed=2)
    r = ingest_session(different, paths)
    assert r.status == "rejected" and "already ingested from" in r.rejections[0].reason


def test_a_day_listed_without_a_group_is_harmless(paths: Paths, make_session: Callable[..., Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer killed after recording the day but before publishing leaves a day too many in
    the entry: nothing is found there, and the next run ingests and narrows the entry."""
    d = make_session(paths.landing, "S1")
    index.ensure_built(paths)

    def killed(tmp: Path, target: Path) -> None:
        raise KeyboardInterrupt("killed between index.add_day and publish")

    monkeypatch.setattr(store, "publish", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest_session(d, paths)
    monkeypatch.undo()
    assert _entry(paths, "S1") == [DAY]
    assert store.find_groups(paths, "S1") == []
    assert ingest_session(d, paths).status == "ingested"
    assert _entry(paths, "S1") == [DAY]


def test_built_index_does_not_look_into_every_day(paths: Paths, make_session: Callable[..., Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With the index built, finding an id's groups reads its entry only: no listing of the
    captures folder, whatever the number of days."""
    ingest_session(make_session(paths.landing, "S1"), paths)
    for k in range(50):
        (paths.captures / f"2025-01-{k:02d}").mkdir(parents=True)
    calls: list[Path] = []
    real = Path.iterdir

    def spy(self: Path):  # type: ignore[no-untyped-def]
        calls.append(self)
        return real(self)

    monkeypatch.setattr(Path, "iterdir", spy)
    assert store.find_groups(paths, "S1") == [store.group_path(paths, DAY, "S1")]
    assert store.find_groups(paths, "S-unknown") == []
    assert paths.captures not in calls


def test_a_group_put_back_by_recovery_stays_indexed(tmp_path: Path, paths: Paths,
                                                    make_session: Callable[..., Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A same-day rewrite killed between its two renames leaves the old group aside; the session
    then moves to another day; recovery of the first day puts the old group back. The index must
    list that day, so the next move deletes it (no session left behind in two days)."""
    import os

    d = make_session(paths.landing, "S1", seed=1)
    ingest_session(d, paths)
    for f in make_session(tmp_path / "x", "S1", seed=2).glob("frame_*"):
        shutil.copy(f, d / f.name)

    def killed(tmp: Path, target: Path) -> None:
        os.rename(target, tmp.parent / f"{tmp.name[: -len(store.GROUP_SUFFIX)]}{store.OLD_SUFFIX}")
        raise KeyboardInterrupt("killed between the renames")

    monkeypatch.setattr(store, "publish", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest_session(d, paths)
    monkeypatch.undo()

    def move_to(day: str) -> None:
        m = json.loads((d / "manifest.json").read_text())
        m["captured_at"] = f"{day}T01:00:00+00:00"
        (d / "manifest.json").write_text(json.dumps(m))
        assert ingest_session(d, paths).status in ("ingested", "rewritten")

    move_to("2026-03-15")
    assert store.clean_stale_temp(paths, DAY) == ["S1"]  # the old group is back in DAY
    assert DAY in _entry(paths, "S1")
    move_to("2026-03-16")
    on_disk = sorted(p.parent.name for p in paths.captures.glob("*/S1.zarr") if store.is_complete(p))
    assert on_disk == ["2026-03-16"] and _entry(paths, "S1") == ["2026-03-16"]


def test_a_group_written_without_the_index_is_still_protected(tmp_path: Path, paths: Paths,
                                                              make_session: Callable[..., Path]) -> None:
    """A group published without an index entry (an older release running beside this one)
    is found at the session's own day path: a reused id from another folder is refused and the
    group kept, and the group gets indexed."""
    d = make_session(paths.landing, "S1", seed=1)
    first = ingest_session(d, paths)
    shutil.rmtree(index.index_root(paths))
    index.ensure_built(paths)  # built while the group is invisible to it: simulate by emptying
    for entry in index.index_root(paths).glob("*/S1.json"):
        entry.unlink()
    assert store.find_groups(paths, "S1") == []
    different = make_session(tmp_path / "landing3", "S1", seed=2)
    r = ingest_session(different, paths)
    assert r.status == "rejected" and "already ingested from" in r.rejections[0].reason
    assert store.read_group_attrs(store.group_path(paths, DAY, "S1"))["content_hash"] == first.content_hash  # type: ignore[index]
    assert _entry(paths, "S1") == [DAY]
