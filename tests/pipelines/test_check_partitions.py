"""Asset checks carry their partition: a day's warning stays on that day, and a blocking check
stops the day's downstream steps."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "assets"))
from dagster import AssetCheckKey, AssetKey  # noqa: E402
from dagster._core.storage.asset_check_execution_record import (  # noqa: E402
    AssetCheckExecutionRecordStatus,
)
from tiny_landing import make_session  # noqa: E402  (the tiny-session helper of tests/assets)

from assets.captures import CAPTURES, CHECK_NO_REJECTIONS, CHECK_SATURATION  # noqa: E402
from assets.characterization import MODULE_STATS  # noqa: E402
from pipelines.definitions import defs  # noqa: E402
from pipelines.runner import prepare_instance, run_pipeline  # noqa: E402
from sensorfleet.config import resolve_paths  # noqa: E402

BROKEN_DAY, CLEAN_DAY = "2024-05-01", "2024-05-02"


def test_every_check_of_a_daily_asset_is_partitioned_and_blocking_is_deliberate() -> None:
    graph = defs().resolve_asset_graph()
    blocking = set()
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        asset_partitions = graph.get(check_key.asset_key).partitions_def
        assert spec.partitions_def == asset_partitions, check_key
        if spec.blocking:
            blocking.add(check_key.name)
    assert blocking == {"no_unexpected_saturation", "operating_points_complete", "metrics_within_physical_bounds"}


def test_a_warning_stays_on_its_day_after_a_later_clean_day(tmp_path: Path) -> None:
    paths = resolve_paths(tmp_path, tmp_path / "landing")
    paths.landing.mkdir()
    make_session(paths.landing, "good-1", f"{BROKEN_DAY}T10:00:00+00:00", seed=1)
    make_session(paths.landing, "broken", f"{BROKEN_DAY}T11:00:00+00:00", seed=2, drop_file=True)
    make_session(paths.landing, "good-2", f"{CLEAN_DAY}T10:00:00+00:00", seed=3)
    summary = run_pipeline(paths, select=["captures"])  # the clean day runs last
    assert summary.ok and [d.day for d in summary.days] == [BROKEN_DAY, CLEAN_DAY]

    instance = prepare_instance(paths)
    assert {run.job_name for run in instance.get_runs()} == {"daily_pipeline"}  # a named job, not ephemeral
    key = AssetCheckKey(AssetKey(CAPTURES), CHECK_NO_REJECTIONS)
    latest = {
        info.partition_key: info.latest_execution_status
        for info in instance.event_log_storage.get_asset_check_partition_info([key])
    }
    assert latest == {
        BROKEN_DAY: AssetCheckExecutionRecordStatus.FAILED,
        CLEAN_DAY: AssetCheckExecutionRecordStatus.SUCCEEDED,
    }


def test_a_blocking_check_stops_the_days_characterization(tmp_path: Path) -> None:
    paths = resolve_paths(tmp_path, tmp_path / "landing")
    paths.landing.mkdir()
    make_session(paths.landing, "sat-dark", f"{BROKEN_DAY}T10:00:00+00:00", seed=4, saturate_dark=True)
    summary = run_pipeline(paths, select=["captures", "characterization"])
    (day,) = summary.days
    assert not summary.ok
    assert day.error is not None and "blocking" in day.error and CHECK_SATURATION in day.error
    assert [f.check for f in day.failed_checks] == [CHECK_SATURATION]
    assert day.characterized is None  # the downstream step never ran
    assert not (paths.tables / MODULE_STATS).exists()
