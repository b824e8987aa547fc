"""Out of disk: ENOSPC injected at each write of a day's run (every Python-level file write under
the data root, through ``open`` and ``os.open``). The error names the cause and the path, the
report counts what was really published, nothing visible is half-written, and the next run on
a freed disk converges to the clean result."""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import zarr

from sensorfleet.config import Paths
from sensorfleet.ingest import IngestError, ingest_day, list_ingested
from sensorfleet.tables import read_partition

DAY = "2026-03-14"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


class DiskFull:
    """Counts the writes opened under ``root``; the one numbered ``fail_at`` raises ENOSPC."""

    def __init__(self, root: Path, fail_at: int | None) -> None:
        self.root, self.fail_at, self.count = str(root), fail_at, 0
        self.failed: str | None = None

    def hit(self, path: Any, writing: bool) -> None:
        if not writing or not str(os.fspath(path) if not isinstance(path, int) else "").startswith(self.root):
            return
        self.count += 1
        if self.count == self.fail_at:
            self.failed = str(path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@contextmanager
def disk_full(monkeypatch: pytest.MonkeyPatch, root: Path, fail_at: int | None) -> Iterator[DiskFull]:
    full = DiskFull(root, fail_at)
    real_open, real_os_open = builtins.open, os.open

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        full.hit(file, any(c in mode for c in "wxa+"))
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        full.hit(path, bool(flags & _WRITE_FLAGS))
        return real_os_open(path, flags, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", fake_open)
        m.setattr(io, "open", fake_open)
        m.setattr(os, "open", fake_os_open)
        yield full


def _sessions(paths: Paths, make_session: Callable[..., Path]) -> None:
    make_session(paths.landing, "S1", per_point=2)
    make_session(paths.landing, "S2", per_point=2, seed=1)


def _content(paths: Paths) -> dict[str, list[tuple[Any, ...]]]:
    """The day's tables without the run-dependent columns, plus the published groups."""
    out = {}
    for table in ("sessions", "captures", "rejections"):
        df = read_partition(paths.tables, table, DAY)
        run_dependent = ("written_at", "ingested_at", "rejected_at", "last_run", "zarr_path", "source_dir", "session_dir")
        df = df.drop([c for c in run_dependent if c in df.columns])
        out[table] = sorted(df.rows()) if df.height else []
    out["groups"] = [(g.name,) for g in list_ingested(paths, DAY)]
    return out


def _writes_of_a_clean_run(tmp_path: Path, make_session: Callable[..., Path],
                           monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, Any]]:
    paths = Paths(root=tmp_path / "clean" / "root", landing=tmp_path / "clean" / "landing")
    _sessions(paths, make_session)
    with disk_full(monkeypatch, paths.root, None) as full:
        ingest_day(paths, DAY, workers=1)
    return full.count, _content(paths)


def _nothing_visible_is_half_written(paths: Paths) -> None:
    for group in list_ingested(paths, DAY):
        arr = zarr.open_group(str(group), mode="r")["frames"]
        assert arr[:].shape[0] == zarr.open_group(str(group), mode="r").attrs["n_frames"]
    for file in paths.tables.rglob("[!.]*.parquet") if paths.tables.exists() else []:
        pl.read_parquet(file)  # every visible table file is whole
    tmp = paths.captures / DAY / ".tmp"
    assert not tmp.exists() or not list(tmp.iterdir()), "a temp group stayed behind"


def test_enospc_at_every_write(tmp_path: Path, make_session: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    n_writes, clean = _writes_of_a_clean_run(tmp_path, make_session, monkeypatch)
    assert n_writes > 10
    errors = 0
    for fail_at in range(1, n_writes + 1):
        paths = Paths(root=tmp_path / f"w{fail_at}" / "root", landing=tmp_path / f"w{fail_at}" / "landing")
        _sessions(paths, make_session)
        with disk_full(monkeypatch, paths.root, fail_at) as full:
            try:
                report = ingest_day(paths, DAY, workers=1)
            except IngestError as exc:
                errors += 1
                message = str(exc).lower()
                assert "no space left on device" in message and str(paths.root) in str(exc), str(exc)
                assert exc.report is not None
                published = {g.name[:-5] for g in list_ingested(paths, DAY)}
                written = {r.session_id for r in exc.report.results if r.status in ("ingested", "rewritten")}
                assert written <= published, (fail_at, full.failed)  # counted only what is there
                assert f"{exc.report.n_ingested} ingested" in str(exc)
            else:  # the failed write was one the run can do without (the scan's cache)
                assert report.n_ingested == 2, full.failed
        _nothing_visible_is_half_written(paths)
        ingest_day(paths, DAY, workers=1)  # the disk is free again
        assert _content(paths) == clean, (fail_at, full.failed)
    assert errors >= n_writes - 2
