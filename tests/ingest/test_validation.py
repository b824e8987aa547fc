"""Every way a session can be refused: the right rejection rows, the others go on, inputs untouched."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sensorfleet.config import Paths
from sensorfleet.ingest import ingest_day, ingest_session, list_ingested
from sensorfleet.rawio import encode_frame
from sensorfleet.tables import read_partition

DAY = "2026-03-14"


def _remove_manifest(d: Path) -> None:
    (d / "manifest.json").unlink()


def _garble_manifest(d: Path) -> None:
    (d / "manifest.json").write_text("{ not json")


def _edit(d: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    m = json.loads((d / "manifest.json").read_text())
    fn(m)
    (d / "manifest.json").write_text(json.dumps(m))


def _schema_error(d: Path) -> None:
    def f(m: dict[str, Any]) -> None:
        m["sensor"]["bit_depth"] = 20
        del m["module_id"]
    _edit(d, f)


def _missing_frame(d: Path) -> None:
    (d / "frame_002.raw").unlink()


def _wrong_size(d: Path) -> None:
    with open(d / "frame_001.raw", "ab") as f:
        f.write(b"\0" * 7)


def _absolute(d: Path) -> None:
    def f(m: dict[str, Any]) -> None:
        m["frames"][0]["file"] = str(d / "frame_000.raw")
    _edit(d, f)


def _dotdot(d: Path) -> None:
    outside = d.parent / "outside.raw"
    outside.write_bytes((d / "frame_000.raw").read_bytes())

    def f(m: dict[str, Any]) -> None:
        m["frames"][0]["file"] = "../outside.raw"
    _edit(d, f)


def _symlink_out(d: Path) -> None:
    outside = d.parent.parent / "elsewhere.raw"
    outside.write_bytes((d / "frame_003.raw").read_bytes())
    (d / "frame_003.raw").unlink()
    (d / "frame_003.raw").symlink_to(outside)


def _lonely_point(d: Path) -> None:
    def f(m: dict[str, Any]) -> None:
        m["frames"][5]["photons_per_pixel"] = 1700.0
    _edit(d, f)


def _bit_depth(d: Path) -> None:
    def f(m: dict[str, Any]) -> None:
        m["sensor"]["bit_depth"] = 8
    _edit(d, f)


def _folder_name(d: Path) -> None:
    def f(m: dict[str, Any]) -> None:
        m["session_id"] = "someone-else"
    _edit(d, f)


def _npy_shape(d: Path) -> None:
    def f(m: dict[str, Any]) -> None:
        m["pixel_format"] = "npy"
        for i, fr in enumerate(m["frames"]):
            name = f"frame_{i:03d}.npy"
            shape = (48, 63) if i == 4 else (48, 64)
            (d / name).write_bytes(encode_frame(np.full(shape, 100, dtype=np.uint16), "npy"))
            fr["file"] = name
    _edit(d, f)


CASES: list[tuple[str, Callable[[Path], None], list[tuple[str, str]]]] = [
    ("manifest_missing", _remove_manifest, [("manifest.json", "missing")]),
    ("manifest_not_json", _garble_manifest, [("manifest.json", "not valid JSON")]),
    ("manifest_schema", _schema_error, [("manifest.json", r"sensor\.bit_depth.*module_id|module_id.*sensor\.bit_depth")]),
    ("frame_missing", _missing_frame, [("frame_002.raw", "missing")]),
    ("frame_wrong_size", _wrong_size, [("frame_001.raw", "expected 4608 bytes, found 4615")]),
    ("frame_absolute", _absolute, [("*", "absolute path")]),
    ("frame_dotdot", _dotdot, [("../outside.raw", r"leaves the session folder \('\.\.'\)")]),
    ("frame_symlink_outside", _symlink_out, [("frame_003.raw", "resolves outside the session folder")]),
    ("lonely_operating_point", _lonely_point, [
        ("manifest.json", r"photons_per_pixel=1600.0\) has 1 frame \(frame_004.raw\); expected at least 2"),
        ("manifest.json", r"photons_per_pixel=1700.0\) has 1 frame \(frame_005.raw\); expected at least 2"),
    ]),
    ("values_exceed_bit_depth", _bit_depth, [
        (f"frame_{i:03d}.raw", "exceed bit_depth 8: expected <= 255 DN, found max") for i in (4, 5)  # 1600 photons: ~544 DN; 400 photons: ~184 DN fits
    ]),
    ("session_id_not_folder", _folder_name, [("manifest.json", "does not match the folder name")]),
    ("npy_wrong_shape", _npy_shape, [("frame_004.npy", r"expected \(H, W\) = \(48, 64\), found \(48, 63\)")]),
]


@pytest.mark.parametrize("name,breaker,expected", CASES, ids=[c[0] for c in CASES])
def test_rejection_rows(paths: Paths, make_session: Callable[..., Path], name: str,
                        breaker: Callable[[Path], None], expected: list[tuple[str, str]]) -> None:
    d = make_session(paths.landing, name.replace("_", "-"))
    breaker(d)
    result = ingest_session(d, paths)
    assert result.status == "rejected"
    assert result.zarr_path is None
    found = sorted((r.file, r.reason) for r in result.rejections)
    assert len(found) == len(expected), found
    for (file, reason), (exp_file, exp_reason) in zip(found, sorted(expected), strict=True):
        if exp_file != "*":
            assert file == exp_file
        assert __import__("re").search(exp_reason, reason), (reason, exp_reason)
    assert all(r.session_dir == str(d) for r in result.rejections)
    assert not (paths.captures / DAY).exists() or list_ingested(paths, DAY) == []
    assert not list((paths.captures / DAY / ".tmp").glob("*")) if (paths.captures / DAY / ".tmp").exists() else True


def test_several_problems_are_collected(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "many")
    _missing_frame(d)
    _wrong_size(d)
    _lonely_point(d)
    files = sorted(r.file for r in ingest_session(d, paths).rejections)
    assert files == ["frame_001.raw", "frame_002.raw", "manifest.json", "manifest.json"]


def test_broken_manifest_is_filed_under_its_mtime_day(paths: Paths, make_session: Callable[..., Path]) -> None:
    d = make_session(paths.landing, "broken")
    _garble_manifest(d)
    t = 1_780_000_000  # 2026-05-28 UTC
    os.utime(d / "manifest.json", (t, t))
    result = ingest_session(d, paths)
    assert (result.session_id, result.capture_date) == (None, "2026-05-28")


def test_day_goes_on_and_inputs_are_untouched(paths: Paths, make_session: Callable[..., Path],
                                              fingerprint: Callable[[Path], dict[str, Any]]) -> None:
    """All broken sessions and two good ones in one day: the good ones are stored, each problem
    gets a row of the rejections table, and no landing file changes (bytes or mtime)."""
    for name, breaker, _ in CASES:
        if name in ("manifest_missing", "manifest_not_json", "manifest_schema"):
            continue  # filed under the mtime day, tested above
        breaker(make_session(paths.landing, name.replace("_", "-")))
    make_session(paths.landing, "good-1", seed=1)
    make_session(paths.landing, "good-2", seed=2)
    def inputs() -> dict[str, Any]:  # landing plus the files symlinked from outside it
        return {k: v for k, v in fingerprint(paths.landing.parent).items() if not k.startswith("root/")}

    before = inputs()
    assert len(before) > 80
    report = ingest_day(paths, DAY, workers=1)
    assert inputs() == before
    assert report.n_ingested == 2
    assert report.n_rejected == len(CASES) - 3
    assert [p.name for p in list_ingested(paths, DAY)] == ["good-1.zarr", "good-2.zarr"]
    rej = read_partition(paths.tables, "rejections", DAY)
    assert rej.height == len(report.rejections) == sum(len(c[2]) for c in CASES[3:])
    assert set(rej["session_dir"].unique()) == {str(r.session_dir) for r in report.results if r.status == "rejected"}
    sessions = read_partition(paths.tables, "sessions", DAY)
    assert sorted(sessions.filter(sessions["status"] == "ingested")["session_id"]) == ["good-1", "good-2"]
    # rejected sessions with a readable manifest are listed too
    assert "lonely-operating-point" in sessions.filter(sessions["status"] == "rejected")["session_id"].to_list()
