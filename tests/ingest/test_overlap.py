"""Overlapping runs of one day: a session held by another run is waited for, not repeated, and a
killed holder never blocks the next run (flock locks die with their process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sensorfleet.config import Paths
from sensorfleet.emva import day as emva_day
from sensorfleet.emva.config import CharacterizationConfig
from sensorfleet.ingest import ingest_day, ingest_session
from sensorfleet.ingest.layout import session_lock_file
from sensorfleet.ingest.validate import Rejection

DAY = "2026-03-14"
_HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
if len(sys.argv) > 3:
    open(sys.argv[3], "w").close()  # the holder's work, done before it lets go
"""


@contextmanager
def holder(lock: Path, seconds: float, marker: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``lock`` for ``seconds`` (then writing ``marker``)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-c", _HOLD, str(lock), str(seconds)] + ([str(marker)] if marker else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_killed_holder_of_a_session_lock_does_not_block_ingest(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1")
    with holder(session_lock_file(paths, "S1"), 600) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        assert ingest_session(d, paths).status == "ingested"
    assert time.monotonic() - t0 < 30


def _fake_characterization(monkeypatch: pytest.MonkeyPatch, marker: Path) -> list[Path]:
    """characterize_session counts its calls; a maps group is 'current' once ``marker`` exists."""
    calls: list[Path] = []
    monkeypatch.setattr(emva_day, "characterize_session", lambda captures, out, config: calls.append(captures))
    monkeypatch.setattr(emva_day, "is_current", lambda out, content_hash: marker.exists())
    return calls


def test_characterization_waits_for_an_overlapping_run_instead_of_repeating_it(
        paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "done-by-the-other-run"
    calls = _fake_characterization(monkeypatch, marker)
    captures, out = paths.captures / DAY / "S1.zarr", paths.maps / DAY / "S1.zarr"
    with holder(emva_day.characterize_lock_file(paths, "S1"), 1.0, marker):
        did = emva_day._characterize(CharacterizationConfig(), paths, (captures, out))
    assert (did, calls) == (False, [])


def test_killed_holder_of_a_characterization_claim_does_not_block(
        paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_characterization(monkeypatch, tmp_path / "never")
    captures, out = paths.captures / DAY / "S1.zarr", paths.maps / DAY / "S1.zarr"
    with holder(emva_day.characterize_lock_file(paths, "S1"), 600) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert emva_day._characterize(CharacterizationConfig(), paths, (captures, out)) is True
    assert calls == [captures]


def test_second_run_of_a_day_repeats_no_ingest_work(paths: Paths, make_session: Callable[..., Path]) -> None:
    """Sessions written by a run that held their locks are unchanged for the one that waited."""
    make_session(paths.landing, "S1")
    make_session(paths.landing, "S2", seed=1)
    first = ingest_day(paths, DAY, workers=1)
    second = ingest_day(paths, DAY, workers=1)
    assert (first.n_ingested, second.n_ingested, second.n_unchanged) == (2, 0, 2)


def test_rejection_of_an_unreadable_manifest_is_labelled_by_its_folder(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "S1")
    (d / "manifest.json").write_text("{")
    (rejection,) = ingest_session(d, paths).rejections
    assert isinstance(rejection, Rejection) and rejection.session_id is None
    assert rejection.label == "S1"
