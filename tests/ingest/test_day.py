"""A day's tables: schemas, rows from the zarr groups, both time axes; streaming memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from sensorfleet.config import Paths
from sensorfleet.ingest import (
    CAPTURES_SCHEMA,
    REJECTIONS_SCHEMA,
    SESSIONS_SCHEMA,
    ingest_day,
    open_session,
)
from sensorfleet.rawio import encode_frame
from sensorfleet.tables import read_partition, read_table

DAY = "2026-03-14"


def test_tables_schema_and_rows(paths: Paths, make_session: Callable[..., Path]) -> None:
    make_session(paths.landing, "S1", seed=1)
    make_session(paths.landing, "S2", seed=2, captured_at="2026-03-14T22:00:00-05:00")  # next UTC day
    bad = make_session(paths.landing, "S3", seed=3)
    (bad / "frame_000.raw").unlink()
    t0 = datetime.now(UTC)
    report = ingest_day(paths, DAY, workers=1)
    assert (report.n_ingested, report.n_rejected) == (1, 1)

    sessions = read_partition(paths.tables, "sessions", DAY)
    assert dict(sessions.drop("capture_date").schema) == SESSIONS_SCHEMA
    s1 = sessions.filter(pl.col("session_id") == "S1").row(0, named=True)
    attrs: Any = open_session(paths, DAY, "S1").attrs
    assert s1["status"] == "ingested" and s1["last_run"] == "ingested"
    assert s1["captured_at"] == datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    assert s1["content_hash"] == attrs["content_hash"]
    assert s1["zarr_path"] == str(paths.captures / DAY / "S1.zarr")
    assert (s1["n_frames"], s1["n_operating_points"], s1["width"], s1["bit_depth"]) == (6, 3, 64, 12)
    assert s1["bytes_in"] == 6 * 4608 and s1["written_at"] >= t0
    s3 = sessions.filter(pl.col("session_id") == "S3").row(0, named=True)
    assert (s3["status"], s3["n_rejections"], s3["zarr_path"]) == ("rejected", 1, None)

    captures = read_partition(paths.tables, "captures", DAY)
    assert dict(captures.drop("capture_date").schema) == CAPTURES_SCHEMA
    assert captures.height == 6 and captures["frame_index"].to_list() == list(range(6))
    assert captures["mean_dn"].to_list() == [f["mean_dn"] for f in attrs["frames"]]
    assert captures["checksum_xxh3_128"].to_list() == [f["checksum_xxh3_128"] for f in attrs["frames"]]
    assert captures["op_index"].to_list() == [0, 0, 1, 1, 2, 2]

    rejections = read_partition(paths.tables, "rejections", DAY)
    assert dict(rejections.drop("capture_date").schema) == REJECTIONS_SCHEMA
    row = rejections.row(0, named=True)
    assert (row["session_id"], row["file"]) == ("S3", "frame_000.raw")
    assert row["captured_at"] == datetime(2026, 3, 14, 9, 30, tzinfo=UTC) and row["written_at"] >= row["rejected_at"]

    first = read_partition(paths.tables, "sessions", DAY).sort("session_id")
    # the next day holds S2; rerunning the first day rebuilds the same rows
    ingest_day(paths, "2026-03-15", workers=1)
    assert read_table(paths.tables, "sessions").height == 3
    (bad / "frame_000.raw").write_bytes((bad / "frame_001.raw").read_bytes())  # fixed
    ingest_day(paths, DAY, workers=1)
    assert read_partition(paths.tables, "rejections", DAY).height == 0
    again = read_partition(paths.tables, "sessions", DAY).sort("session_id")
    assert again["status"].to_list() == ["ingested", "ingested"]
    # S1 is unchanged: its row keeps the version the first run wrote (last_run, written_at);
    # S3 changed from rejected to ingested: a new version
    assert again["last_run"].to_list() == ["ingested", "ingested"]
    assert again["written_at"][0] == first["written_at"][0]
    assert again["written_at"][1] > first["written_at"][1]


def test_unchanged_rerun_rewrites_nothing(paths: Paths, make_session: Callable[..., Path]) -> None:
    """The second time axis is true: a re-run that finds every session unchanged leaves every
    partition file untouched (same bytes, same mtime) and every written_at as it was."""
    make_session(paths.landing, "S1", seed=1)
    bad = make_session(paths.landing, "S3", seed=3)
    (bad / "frame_000.raw").unlink()
    ingest_day(paths, DAY, workers=1)
    files = sorted(paths.tables.rglob("*.parquet"))
    assert {f.parent.parent.name for f in files} == {"sessions", "captures", "rejections"}
    before = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}
    report = ingest_day(paths, DAY, workers=1)
    assert (report.n_unchanged, report.n_rejected) == (1, 1)
    assert sorted(paths.tables.rglob("*.parquet")) == files
    for f in files:
        assert (f.stat().st_mtime_ns, f.read_bytes()) == before[f], f


_CHILD = """
import json, sys
from pathlib import Path
from sensorfleet.config import Paths
from sensorfleet.ingest import ingest_session
root, session = sys.argv[1], sys.argv[2]
r = ingest_session(Path(session), Paths(root=Path(root), landing=Path(session).parent))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (forked) parent
hwm = next(int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(json.dumps({"status": r.status, "peak_rss": hwm}))
"""


def _big_session(landing: Path, sid: str, n: int, width: int, height: int) -> Path:
    d = landing / sid
    d.mkdir(parents=True)
    rng = np.random.default_rng(7)
    entries = []
    for i in range(n):
        frame = np.clip(464 + 14 * rng.standard_normal((height, width), dtype=np.float32), 0, 4095).astype(np.uint16)
        (d / f"f{i:03d}.raw").write_bytes(encode_frame(frame, "raw12_mipi"))
        entries.append({"file": f"f{i:03d}.raw", "kind": "flat", "exposure_s": 0.01, "photons_per_pixel": 1000.0})
    manifest = {
        "schema_version": 1, "session_id": sid, "module_id": "M", "station_id": "S",
        "captured_at": "2026-03-14T10:00:00+00:00", "temperature_c": 30.0,
        "sensor": {"lot_id": "L", "wafer_id": "W", "die_x": 0, "die_y": 0, "width": width, "height": height,
                   "bit_depth": 12, "cfa_pattern": "mono", "pixel_pitch_um": 1.0},
        "pixel_format": "raw12_mipi", "frames": entries,
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_frames(tmp_path: Path) -> None:
    """Peak RSS of a 4-frame and a 16*scale-frame session differ by less than 3 frames.
    Default scale 2: 2000x1500 (6 MB a frame); SENSORFLEET_TEST_SCALE=4: 4000x3000 x 64 frames."""
    scale = float(os.environ.get("SENSORFLEET_TEST_SCALE", "2"))
    width, height, n_large = int(1000 * scale), int(750 * scale), max(8, int(16 * scale))
    frame_bytes = width * height * 2
    peaks = {}
    for sid, n in (("small", 4), ("large", n_large)):
        d = _big_session(tmp_path / "landing", sid, n, width, height)
        out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "root"), str(d)],
                             capture_output=True, text=True, check=True)
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        assert rec["status"] == "ingested"
        peaks[sid] = rec["peak_rss"]
    assert peaks["large"] - peaks["small"] < 3 * frame_bytes, (peaks, frame_bytes)
    assert peaks["large"] < 1 << 30
