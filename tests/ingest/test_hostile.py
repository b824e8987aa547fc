"""The failure boundary of one session: whatever a landing folder holds (any bytes, size, file
type, nesting or number) becomes rejection rows naming the folder, the file and the reason; the
scan, the day and the other sessions go on, and the landing is left as it was."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sensorfleet.capture_days import today_utc
from sensorfleet.config import Paths
from sensorfleet.ingest import ingest_day, ingest_session, list_ingested, scan_landing
from sensorfleet.tables import read_partition

DAY = "2026-03-14"
TODAY = "today"  # the filing day of sessions without a partition (or of fresh unparseable manifests)


def _manifest(d: Path) -> dict[str, Any]:
    return json.loads((d / "manifest.json").read_text())


def _write_text(d: Path, text: str) -> None:
    (d / "manifest.json").write_text(text)


def _replace(d: Path, old: str, new: str) -> None:
    """Edit the manifest's JSON text (for what json.dumps cannot produce)."""
    text = json.dumps(_manifest(d))
    assert old in text, (old, text)
    _write_text(d, text.replace(old, new, 1))


def _set(path: list[str | int], value: Any) -> Callable[[Path], None]:
    def breaker(d: Path) -> None:
        m = _manifest(d)
        node: Any = m
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        _write_text(d, json.dumps(m))
    return breaker


def _deep(d: Path) -> None:
    _write_text(d, "[" * 100_000 + "]" * 100_000)


def _special(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    """Put a FIFO, a symlink to a device... in place of ``name``."""
    def breaker(d: Path) -> None:
        (d / name).unlink()
        make(d / name)
    return breaker


def _to_dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _huge(d: Path) -> None:
    with open(d / "manifest.json", "r+b") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB of zeros, nothing read past the limit


def _utf16(d: Path) -> None:
    (d / "manifest.json").write_bytes(json.dumps(_manifest(d)).encode("utf-16"))


def _old_garbage(d: Path) -> None:
    _write_text(d, "{ not json")
    os.utime(d / "manifest.json", (1_420_070_400, 1_420_070_400))  # 2015-01-01: no partition


# (name, breaker, filing day, [(file, reason regex)])
CASES: list[tuple[str, Callable[[Path], None], str, list[tuple[str, str]]]] = [
    ("deep-nesting", _deep, TODAY, [("manifest.json", "nested too deeply")]),
    ("manifest-fifo", _special("manifest.json", os.mkfifo), TODAY, [("manifest.json", r"not a regular file \(a FIFO\)")]),
    ("manifest-dev-zero", _special("manifest.json", _to_dev_zero), TODAY, [("manifest.json", r"not a regular file \(a character device\)")]),
    ("manifest-huge", _huge, TODAY, [("manifest.json", r"67108864 bytes; expected at most 4194304")]),
    ("utf16", _utf16, TODAY, [("manifest.json", r"not UTF-8 \(it looks like UTF-16/32\)")]),
    ("bom", lambda d: (d / "manifest.json").write_bytes(b"\xef\xbb\xbf" + (d / "manifest.json").read_bytes()),
     TODAY, [("manifest.json", "byte-order mark")]),
    ("die-x-huge", lambda d: _replace(d, '"die_x": 3', '"die_x": 100000000000000000000'), TODAY,
     [("manifest.json", r"integer of 21 digits .*expected one that fits int64")]),
    ("die-x-int64-max", _set(["sensor", "die_x"], 2**63), TODAY, [("manifest.json", "does not fit int64")]),
    ("width-text", _set(["sensor", "width"], "64"), TODAY, [("manifest.json", r"sensor\.width: .*expected a JSON integer, found str '64'")]),
    ("width-float", _set(["sensor", "width"], 64.0), TODAY, [("manifest.json", r"sensor\.width: .*expected a JSON integer, found float")]),
    ("exposure-text", _set(["frames", 0, "exposure_s"], "0.01"), TODAY,
     [("manifest.json", r"frames\.0\.exposure_s: .*expected a JSON number, found str")]),
    ("bool-gain", _set(["frames", 0, "analog_gain"], True), TODAY, [("manifest.json", r"analog_gain: .*found bool")]),
    ("schema-version-true", _set(["schema_version"], True), TODAY, [("manifest.json", r"schema_version: .*found bool")]),
    ("captured-at-number", _set(["captured_at"], 1_700_000_000), TODAY,
     [("manifest.json", r"captured_at: .*expected an ISO 8601 string with a zone")]),
    ("infinity", lambda d: _replace(d, '"photons_per_pixel": 400.0', '"photons_per_pixel": Infinity'), TODAY,
     [("manifest.json", "Infinity is not JSON")]),
    ("nan", lambda d: _replace(d, '"temperature_c": 35.0', '"temperature_c": NaN'), TODAY, [("manifest.json", "NaN is not JSON")]),
    ("float-overflow", lambda d: _replace(d, '"pixel_pitch_um": 1.4', '"pixel_pitch_um": 1e400'), TODAY,
     [("manifest.json", "overflows a 64-bit float")]),
    ("duplicate-key", lambda d: _replace(d, '"station_id": "ST-01"', '"station_id": "ST-01", "station_id": "ST-02"'), TODAY,
     [("manifest.json", "duplicate key 'station_id'")]),
    ("long-station", _set(["station_id"], "S" * 1_000_000), TODAY, [("manifest.json", "a string of 1000000 characters")]),
    ("station-129", _set(["station_id"], "S" * 129), TODAY, [("manifest.json", "station_id: String should have at most 128")]),
    ("control-char", _set(["module_id"], "M\x07"), TODAY, [("manifest.json", "module_id: String should match pattern")]),
    ("surrogate", lambda d: _replace(d, '"module_id": "M-', '"module_id": "\\ud800M-'), TODAY,
     [("manifest.json", "unpaired surrogate")]),
    ("frame-fifo", _special("frame_001.raw", os.mkfifo), DAY, [("frame_001.raw", "not a regular file")]),
    ("frame-dev-zero", _special("frame_001.raw", _to_dev_zero), DAY, [("frame_001.raw", "resolves outside the session folder")]),
    ("year-2099", _set(["captured_at"], "2099-01-01T00:00:00Z"), TODAY,
     [("manifest.json", r"capture day 2099-01-01 is outside the accepted range \(2020-01-01 to ")]),
    ("year-2019", _set(["captured_at"], "2019-12-31T23:59:59Z"), TODAY,
     [("manifest.json", "capture day 2019-12-31 is outside the accepted range")]),
    ("old-garbage", _old_garbage, TODAY, [("manifest.json", "not valid JSON")]),
]


def _day(day: str) -> str:
    return today_utc() if day == TODAY else day


@pytest.mark.parametrize("name,breaker,day,expected", CASES, ids=[c[0] for c in CASES])
def test_one_hostile_folder_is_one_rejection(paths: Paths, make_session: Callable[..., Path], name: str,
                                             breaker: Callable[[Path], None], day: str,
                                             expected: list[tuple[str, str]]) -> None:
    d = make_session(paths.landing, name)
    breaker(d)
    result = ingest_session(d, paths)
    assert result.status == "rejected" and result.zarr_path is None
    assert result.capture_date == _day(day)
    found = sorted((r.file, r.reason) for r in result.rejections)
    assert len(found) == len(expected), found
    for (file, reason), (exp_file, exp_reason) in zip(found, sorted(expected), strict=True):
        assert file == exp_file
        assert re.search(exp_reason, reason), (reason, exp_reason)
        assert "captured_at" not in reason or name.startswith(("year", "captured-at")), reason
    assert all(r.session_dir == str(d) for r in result.rejections)


def test_hostile_folders_never_stop_the_scan_or_the_day(paths: Paths, make_session: Callable[..., Path],
                                                        fingerprint: Callable[[Path], dict[str, Any]]) -> None:
    """Every hostile folder at once, beside two good sessions: the scan returns a record per
    folder, both days run, the good sessions are stored, each hostile folder has its rejection
    rows in the partition of its filing day, and no landing file changed."""
    for name, breaker, _, _ in CASES:
        breaker(make_session(paths.landing, name))
    make_session(paths.landing, "good-1", seed=1)
    make_session(paths.landing, "good-2", seed=2)
    before = fingerprint(paths.landing)

    scanned = {s.session_dir.name: s.capture_date for s in scan_landing(paths.landing, paths.state)}
    assert scanned == {"good-1": DAY, "good-2": DAY} | {name: _day(day) for name, _, day, _ in CASES}

    reports = {day: ingest_day(paths, day, workers=1) for day in sorted({DAY, today_utc()})}
    assert fingerprint(paths.landing) == before
    assert [p.name for p in list_ingested(paths, DAY)] == ["good-1.zarr", "good-2.zarr"]
    assert sum(r.n_rejected for r in reports.values()) == len(CASES)
    for day, report in reports.items():
        rows = read_partition(paths.tables, "rejections", day)
        assert rows.height == len(report.rejections)
        folders = {Path(p).name for p in rows["session_dir"]}
        assert folders == {name for name, _, d, _ in CASES if _day(d) == day}
        sessions = read_partition(paths.tables, "sessions", day)
        if sessions.height:  # no row claims a capture day other than its partition
            assert all(str(t.date()) == day for t in sessions["captured_at"])
