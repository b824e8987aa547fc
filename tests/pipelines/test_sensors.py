"""The landing sensor: new day -> run request; same state -> none; changed session -> new request."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from dagster import DagsterInstance, DefaultSensorStatus, SensorResult, build_sensor_context

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "assets"))
from tiny_landing import make_session  # noqa: E402  (the tiny-session helper of tests/assets)

from assets.resources import StorageResource  # noqa: E402
from pipelines.definitions import defs  # noqa: E402
from pipelines.runner import prepare_instance, run_pipeline  # noqa: E402
from sensorfleet.config import resolve_paths  # noqa: E402


def _tick(root: Path, cursor: str | None, instance: DagsterInstance | None = None) -> SensorResult:
    sensor = defs().resolve_sensor_def("landing_sensor")
    storage = StorageResource(root=str(root), landing=str(root / "landing"))
    instance = instance or DagsterInstance.ephemeral()
    with build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage}) as context:
        result = sensor(context)
    assert isinstance(result, SensorResult)
    return result


def test_sensor_requests_new_days_once_and_changed_days_again(tmp_path: Path) -> None:
    paths = resolve_paths(tmp_path, tmp_path / "landing")
    paths.landing.mkdir()
    sensor = defs().resolve_sensor_def("landing_sensor")
    assert sensor.default_status == DefaultSensorStatus.RUNNING

    make_session(paths.landing, "a", "2024-05-01T10:00:00+00:00", seed=1)
    make_session(paths.landing, "b", "2024-05-01T23:30:00-02:00", seed=2)  # 2024-05-02 UTC
    first = _tick(tmp_path, None)
    requests = sorted(first.run_requests or [], key=lambda r: r.partition_key or "")
    assert [r.partition_key for r in requests] == ["2024-05-01", "2024-05-02"]
    assert [r.tags["dagster/partition"] for r in requests] == ["2024-05-01", "2024-05-02"]
    assert requests[0].run_key != requests[1].run_key
    (added_days,) = first.dynamic_partitions_requests or []  # the days join the partitions
    assert sorted(added_days.partition_keys or []) == ["2024-05-01", "2024-05-02"]
    assert (requests[0].run_key or "").startswith("2024-05-01:")

    # the same landing content: no request
    same = _tick(tmp_path, first.cursor)
    assert not same.run_requests
    assert same.skip_reason is not None

    # a frame file of one session rewritten (new size and mtime): that day only, with a new key
    frame = paths.landing / "a" / "flat_015.raw"
    frame.write_bytes(frame.read_bytes() + b"\0\0")
    os.utime(frame, ns=(frame.stat().st_mtime_ns + 10**9,) * 2)
    changed = _tick(tmp_path, same.cursor)
    assert [r.partition_key for r in changed.run_requests or []] == ["2024-05-01"]
    assert changed.run_requests[0].run_key != requests[0].run_key  # type: ignore[index]

    # a new session on a known day also triggers it
    make_session(paths.landing, "c", "2024-05-02T08:00:00+00:00", seed=3)
    added = _tick(tmp_path, changed.cursor)
    assert [r.partition_key for r in added.run_requests or []] == ["2024-05-02"]
    assert set(json.loads(added.cursor or "{}")) == {"2024-05-01", "2024-05-02"}


def test_sensor_skips_without_landing(tmp_path: Path) -> None:
    sensor = defs().resolve_sensor_def("landing_sensor")
    storage = StorageResource(root=str(tmp_path), landing=str(tmp_path / "missing"))
    with build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"storage": storage}) as context:
        result = sensor(context)
    assert result is not None


def test_sensor_skips_days_already_materialized_from_the_same_content(tmp_path: Path) -> None:
    paths = resolve_paths(tmp_path, tmp_path / "landing")
    paths.landing.mkdir()
    make_session(paths.landing, "a", "2024-05-01T10:00:00+00:00", seed=1)
    make_session(paths.landing, "b", "2024-05-02T10:00:00+00:00", seed=2)
    summary = run_pipeline(paths, select=["captures"], days=["2024-05-01"])  # as the CLI does
    assert summary.ok
    instance = prepare_instance(paths)
    fresh = _tick(tmp_path, None, instance)  # a sensor that never ran: only the other day
    assert [r.partition_key for r in fresh.run_requests or []] == ["2024-05-02"]
    # the landing of the materialized day changes afterwards: requested again
    make_session(paths.landing, "c", "2024-05-01T11:00:00+00:00", seed=3)
    later = _tick(tmp_path, fresh.cursor, instance)
    assert [r.partition_key for r in later.run_requests or []] == ["2024-05-01"]


def test_capture_day_range() -> None:
    from datetime import UTC, datetime

    from pipelines.partitions import capture_day_problem

    today = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert capture_day_problem("2026-03-03", today) is None  # a station ahead of UTC
    assert "outside the accepted range" in (capture_day_problem("2026-03-04", today) or "")
    assert "outside the accepted range" in (capture_day_problem("2019-12-31", today) or "")


def test_fingerprint_sees_a_change_with_size_and_mtime_put_back(tmp_path: Path) -> None:
    """A frame rewritten in place, same size, mtime restored: the day's fingerprint still moves
    (its ctime did), so the sensor requests the day and the ingest compares content."""
    import os

    from assets.landing_state import day_fingerprints
    from sensorfleet.ingest.scan import scan_landing

    landing = tmp_path / "landing"
    session = make_session(landing, "S1")
    before = day_fingerprints(scan_landing(landing, tmp_path / "state"))
    frame = sorted(p for p in session.iterdir() if p.name != "manifest.json")[0]
    st = frame.stat()
    data = bytearray(frame.read_bytes())
    data[0] ^= 0xFF
    frame.write_bytes(bytes(data))
    os.utime(frame, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert frame.stat().st_size == st.st_size and frame.stat().st_mtime_ns == st.st_mtime_ns
    after = day_fingerprints(scan_landing(landing, tmp_path / "state"))
    assert after != before
