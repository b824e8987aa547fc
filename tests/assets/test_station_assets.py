"""The station step materialized on module_stats partitions of a fleet with station events:
tables, the chart figure in the metadata, the warning check per day."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

from asset_results import materialization_metadata
from dagster import AssetCheckSeverity, DailyPartitionsDefinition, materialize

from assets.resources import StorageResource
from assets.stations import CHART_NOT_DRAWN, CHECK_ALARMS, STEP, build_station_assets
from pipelines.partitions import FIRST_CAPTURE_DAY
from sensorfleet.config import resolve_paths
from sensorfleet.synth.stations import StationEvent
from tests.stations.station_fleet import START, fleet_modules, write_module_stats

capture_days = DailyPartitionsDefinition(start_date=FIRST_CAPTURE_DAY, fmt="%Y-%m-%d")
EVENT_DAY = (START + timedelta(days=25)).date()


def test_station_charts_tables_figure_and_warning(tmp_path: Path) -> None:
    storage = StorageResource(root=str(tmp_path / "data"), landing=str(tmp_path / "landing"))
    events = (StationEvent("ST03", "light_dimming", EVENT_DAY, 0.08),)
    days = write_module_stats(resolve_paths(tmp_path / "data").tables, fleet_modules(4, days=35, events=events))
    run_config = {"ops": {"watch_stations": {"config": {"baseline_days": 15}}}}
    checks = {}
    for day in (str(EVENT_DAY - timedelta(days=2)), days[-2]):
        result = materialize([build_station_assets(capture_days)], partition_key=day, run_config=run_config,
                             resources={"storage": storage})
        assert result.success
        spc = materialization_metadata(result, "station_spc")
        assert spc["dagster/partition_row_count"] == 8  # 4 stations x 2 metrics measured that day
        payload = spc["station_charts"].split("data:image/png;base64,", 1)[1].rstrip(")")
        assert base64.b64decode(payload).startswith(b"\x89PNG")
        assert Path(spc["station_charts_png"]).read_bytes().startswith(b"\x89PNG")
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.check_name == CHECK_ALARMS and evaluation.severity == AssetCheckSeverity.WARN
        checks[day] = evaluation
    before, after = checks.values()
    assert before.passed and before.metadata["alarms"].value == 0
    assert not after.passed and after.metadata["stations_in_alarm"].value == ["ST03"]
    assert after.metadata["stations_failing"].value == ["ST03 photon_response low"]  # what `pipeline run` prints
    assert "light source dimmer" in after.metadata["details"].value


def test_chart_false_writes_the_same_tables_and_says_why_no_figure(tmp_path: Path) -> None:
    storage = StorageResource(root=str(tmp_path / "data"), landing=str(tmp_path / "landing"))
    days = write_module_stats(resolve_paths(tmp_path / "data").tables, fleet_modules(4, days=20))
    drawn = materialize([build_station_assets(capture_days)], partition_key=days[-1], resources={"storage": storage},
                        run_config={"ops": {STEP: {"config": {"baseline_days": 5}}}})
    skipped = materialize([build_station_assets(capture_days)], partition_key=days[-1], resources={"storage": storage},
                          run_config={"ops": {STEP: {"config": {"baseline_days": 5, "chart": False}}}})
    assert drawn.success and skipped.success
    with_chart, without = (materialization_metadata(r, "station_spc") for r in (drawn, skipped))
    assert without["station_charts"] == CHART_NOT_DRAWN.format(day=days[-1]) and "station_charts_png" not in without
    assert without["dagster/partition_row_count"] == with_chart["dagster/partition_row_count"]
    assert without["states"] == with_chart["states"]
