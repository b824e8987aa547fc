"""The captures step materialized on tiny hand-made sessions: metadata, checks, idempotence."""

from __future__ import annotations

from typing import Any

import polars as pl
from asset_results import materialization_metadata
from dagster import (
    AssetCheckSeverity,
    DailyPartitionsDefinition,
    ExecuteInProcessResult,
    materialize,
)
from tiny_landing import make_session

from assets.captures import (
    CHECK_NO_REJECTIONS,
    CHECK_OPERATING_POINTS,
    CHECK_SATURATION,
    build_capture_assets,
    missing_operating_points,
    unexpected_saturation,
)
from assets.resources import StorageResource
from pipelines.partitions import FIRST_CAPTURE_DAY
from sensorfleet.config import Paths

DAY = "2024-05-01"
# The assets alone on calendar days (the location's days are dynamic and need an instance).
capture_days = DailyPartitionsDefinition(start_date=FIRST_CAPTURE_DAY, fmt="%Y-%m-%d")


def _run(paths: Paths) -> ExecuteInProcessResult:
    return materialize(
        [build_capture_assets(capture_days)],
        partition_key=DAY,
        raise_on_error=False,
        resources={"storage": StorageResource(root=str(paths.root), landing=str(paths.landing))},
        run_config={"ops": {"ingest_captures": {"config": {"workers": 1}}}},
    )


def _checks(result: ExecuteInProcessResult) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_captures_materialize_with_checks(tiny_paths: Paths) -> None:
    landing = tiny_paths.landing
    make_session(landing, "good-1", seed=1)
    make_session(landing, "good-2", seed=2)
    make_session(landing, "bad-missing", seed=3, drop_file=True)
    make_session(landing, "sat-dark", seed=4, saturate_dark=True)
    make_session(landing, "few-levels", seed=5, flat_levels=3)
    make_session(landing, "other-day", "2024-05-02T10:00:00+00:00", seed=6)

    result = _run(tiny_paths)
    # the blocking checks fail the step after its materializations (downstream steps would not run)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = failure.step_failure_data.error.message if failure.step_failure_data.error else ""
    assert "2 blocking asset checks failed" in message, message
    meta = materialization_metadata(result, "captures")
    assert meta["sessions"] == 5  # the other day's session is not in this partition
    assert meta["sessions_ingested"] == 4
    assert meta["sessions_rejected"] == 1
    assert meta["frames"] == 3 * (4 + 12) + (4 + 6)  # the rejected session does not count
    assert meta["bytes_in"] == meta["frames"] * 32 * 24 * 2
    assert meta["bytes_stored"] > 0  # tiny frames: zarr metadata outweighs the compression
    assert meta["compression_ratio"] == meta["bytes_in"] / meta["bytes_stored"]
    rej = materialization_metadata(result, "rejections")
    assert rej["rejections"] == 1 and rej["rejected_sessions"] == ["bad-missing"]
    assert "flat_015.raw" in rej["reasons"]

    checks = _checks(result)
    rejections = checks[CHECK_NO_REJECTIONS]
    assert not rejections.passed and rejections.severity == AssetCheckSeverity.WARN
    assert {e.partition for e in checks.values()} == {DAY}  # recorded for the day, not partition=None
    saturation = checks[CHECK_SATURATION]
    assert not saturation.passed and saturation.severity == AssetCheckSeverity.ERROR
    assert saturation.metadata["sessions_failing"].value == ["sat-dark"]
    assert saturation.metadata["frames_failing"].value == 2
    points = checks[CHECK_OPERATING_POINTS]
    assert not points.passed
    assert points.metadata["sessions_failing"].value == ["few-levels"]

    again = _run(tiny_paths)
    meta2 = materialization_metadata(again, "captures")
    assert meta2["sessions_unchanged"] == 4 and meta2["sessions_ingested"] == 0
    assert meta2["sessions_rejected"] == 1


def test_clean_day_passes_every_check(tiny_paths: Paths) -> None:
    make_session(tiny_paths.landing, "good-1", seed=1)
    result = _run(tiny_paths)
    assert result.success
    checks = _checks(result)
    assert set(checks) == {CHECK_NO_REJECTIONS, CHECK_SATURATION, CHECK_OPERATING_POINTS}
    assert all(c.passed for c in checks.values())


def test_unexpected_saturation_rules() -> None:
    frames = pl.DataFrame(
        {
            "session_id": ["a", "a", "a", "a"],
            "kind": ["dark", "flat", "flat", "dark"],
            "mean_dn": [60.0, 1000.0, 3000.0, 60.0],
            "saturated_fraction": [0.02, 0.02, 0.5, 0.005],
            "bit_depth": [12, 12, 12, 12],
        }
    )
    flagged = unexpected_saturation(frames)
    # the dark at 2 % and the flat at 24 % of full scale; the bright flat may saturate
    assert flagged["mean_dn"].to_list() == [60.0, 1000.0]


def test_missing_dark_point_is_named() -> None:
    frames = pl.DataFrame(
        {
            "session_id": ["s"] * 14,
            "kind": ["dark", "dark"] + ["flat"] * 12,
            "exposure_s": [0.01, 0.01] + [0.01] * 10 + [0.02, 0.02],
            "photons_per_pixel": [0.0, 0.0] + [float(100 * (i // 2 + 1)) for i in range(12)],
        }
    )
    problems = [p["problem"] for p in missing_operating_points(frames)]
    assert len(problems) == 2
    assert "no dark operating point at flat exposure(s) 0.02 s" in problems[0]
    assert "1 dark exposure time(s)" in problems[1]
    # one dark exposure time alone warns (the analysis runs without a dark current); the rest block
    assert [p["blocking"] for p in missing_operating_points(frames)] == [True, False]
    darks = pl.DataFrame(
        {"session_id": ["s"] * 2, "kind": ["dark"] * 2, "exposure_s": [0.02, 0.04], "photons_per_pixel": [0.0, 0.0]}
    )
    assert [p["problem"] for p in missing_operating_points(pl.concat([frames, darks]))] == []
