"""Property test of the whole landing scan and day ingest over generated folders, hostile ones
included: no exception escapes, every folder ends stored or rejected (a rejection row naming
it), and the landing is byte-identical afterwards.

Bounded for ``make test``: 20 examples of at most 4 folders of 8 x 4 pixels (a few seconds);
``SENSORFLEET_TEST_SCALE=N`` runs 20 x N examples.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorfleet.config import Paths
from sensorfleet.ingest import ingest_day, list_ingested, scan_landing
from sensorfleet.tables import read_partition
from tests.landing_folder import LandingFrame, SensorFields, write_landing_session

SCALE = float(os.environ.get("SENSORFLEET_TEST_SCALE", "1"))
DAY = "2026-03-14"

# Values a careless station or an attacker might put in any field (as JSON text fragments).
HOSTILE_VALUES = [
    '"64"', '"0.01"', "true", "null", "NaN", "Infinity", "-Infinity", "1e400", "100000000000000000000",
    "9223372036854775808", "-1", "0", "64.0", '""', '"' + "x" * 5000 + '"', "[]", "{}",
    "[" * 3000 + "]" * 3000, '"\\ud800"', '"2099-01-01T00:00:00Z"', '"2019-01-01T00:00:00Z"',
    '"2026-03-14T09:30:00"', '"../../etc/passwd"', '"/dev/zero"', '"a\\u0000b"',
]
FIELDS = [
    ("schema_version",), ("session_id",), ("module_id",), ("station_id",), ("captured_at",), ("temperature_c",),
    ("sensor", "die_x"), ("sensor", "width"), ("sensor", "height"), ("sensor", "bit_depth"),
    ("sensor", "pixel_pitch_um"), ("sensor", "cfa_pattern"), ("pixel_format",), ("frames",),
    ("frames", 0, "file"), ("frames", 0, "exposure_s"), ("frames", 1, "photons_per_pixel"), ("frames", 0, "kind"),
]
MANIFEST_SHAPES = ["file", "missing", "folder", "fifo", "dev-zero", "empty", "garbage", "utf16", "duplicate-key"]
FRAME_SHAPES = ["file", "missing", "fifo", "folder", "short", "dev-zero"]


def _frames(seed: int) -> list[LandingFrame]:
    rng = np.random.default_rng(seed)
    points = [("dark", 0.01, 0.0), ("flat", 0.01, 100.0)]
    return [LandingFrame(f"f{i}.raw", *points[i // 2], rng.integers(0, 256, (4, 8), dtype=np.uint16)) for i in range(4)]


def _set_raw(text: str, edits: list[tuple[tuple[Any, ...], str]]) -> str:
    """Put each JSON fragment at its path of the manifest JSON ``text`` (a path an earlier edit
    removed is skipped)."""
    m = json.loads(text)
    markers = []
    for n, (path, fragment) in enumerate(edits):
        marker = f"\u0001HOSTILE{n}\u0001"
        node: Any = m
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = marker
        except (KeyError, IndexError, TypeError):
            continue
        markers.append((marker, fragment))
    out = json.dumps(m)
    for marker, fragment in markers:
        out = out.replace(json.dumps(marker), fragment, 1)
    return out


def _replace(path: Path, make: str) -> None:
    if path.is_dir():
        os.rmdir(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if make == "fifo":
        os.mkfifo(path)
    elif make == "folder":
        path.mkdir()
    elif make == "dev-zero":
        path.symlink_to("/dev/zero")


folder_spec = st.fixed_dictionaries({
    "edits": st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(HOSTILE_VALUES)), max_size=2),
    "manifest": st.sampled_from(MANIFEST_SHAPES),
    "frame": st.sampled_from(FRAME_SHAPES),
    "garbage": st.binary(max_size=64),
    "name": st.sampled_from(["", "-x", ".y", "_z"]),
})


def _write_folder(landing: Path, index: int, spec: dict[str, Any]) -> Path:
    sid = f"s{index}{spec['name']}"
    d = write_landing_session(landing, sid, _frames(index), pixel_format="raw8", sensor=SensorFields(bit_depth=8),
                              captured_at=f"{DAY}T09:30:00+00:00", station_id="ST", temperature_c=30.0)
    manifest = d / "manifest.json"
    text = manifest.read_text()
    text = _set_raw(text, spec["edits"])
    shape = spec["manifest"]
    if shape == "duplicate-key":
        text = text.replace('"station_id": "ST"', '"station_id": "ST", "station_id": "ST2"')
    manifest.write_bytes(b"" if shape == "empty" else spec["garbage"] if shape == "garbage"
                         else text.encode("utf-16") if shape == "utf16" else text.encode())
    if shape in ("missing", "folder", "fifo", "dev-zero"):
        manifest.unlink()
        if shape != "missing":
            _replace(manifest, shape)
    frame = d / "f1.raw"
    if spec["frame"] == "short":
        frame.write_bytes(frame.read_bytes()[:-1])
    elif spec["frame"] != "file":
        frame.unlink()
        if spec["frame"] != "missing":
            _replace(frame, spec["frame"])
    return d


def _snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` by type, bytes (regular files only: never read a FIFO) and mtime."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            st_ = p.lstat()
            content: Any = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None
            out[str(p.relative_to(root))] = (st_.st_mode, st_.st_mtime_ns, content)
    return out


@pytest.mark.slow
@settings(max_examples=int(20 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(folder_spec, min_size=1, max_size=4))
def test_landing_scan_and_ingest_never_fail_and_account_for_every_folder(specs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(root=Path(tmp) / "root", landing=Path(tmp) / "landing")
        folders = [_write_folder(paths.landing, i, spec) for i, spec in enumerate(specs)]
        before = _snapshot(paths.landing)

        scanned = scan_landing(paths.landing, paths.state)
        assert {s.session_dir.name for s in scanned} == {d.name for d in folders if not d.name.startswith(".")}
        stored: set[str] = set()
        rejected: set[str] = set()
        for day in sorted({s.capture_date for s in scanned}):
            report = ingest_day(paths, day, workers=1)
            stored |= {str(r.session_dir) for r in report.results if r.status != "rejected"}
            rows = read_partition(paths.tables, "rejections", day)
            rejected |= set(rows["session_dir"]) if rows.height else set()
            assert {Path(g.name).stem for g in list_ingested(paths, day)} >= {
                r.session_id for r in report.results if r.status != "rejected"}

        assert _snapshot(paths.landing) == before
        for s in scanned:
            assert (str(s.session_dir) in stored) != (str(s.session_dir) in rejected), s
