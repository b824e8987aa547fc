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
