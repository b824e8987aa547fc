"""The code location: asset keys, groups, checks, jobs, sensors, schedules, resources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import (
    AssetCheckKey,
    AssetKey,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
)

from pipelines.definitions import defs as load_defs


def test_definitions_load_with_expected_graph() -> None:
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"captures", "rejections", "pixel_maps", "module_stats", "module_channel_stats", "pixel_defects",
                    "final_test", "warehouse", "module_features", "anomaly_scores", "yield_predictions",
                    "anomaly_model", "yield_model", "model_drift", "sfr", "module_optics", "station_spc",
                    "station_alarms", "capture_plans", "spatial_model", "spatial_scores"}
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {
        "captures": "captures", "rejections": "captures",
        "pixel_maps": "characterization", "module_stats": "characterization",
        "module_channel_stats": "characterization", "pixel_defects": "characterization",
        "final_test": "labels", "warehouse": "warehouse", "module_features": "features",
        "anomaly_scores": "models", "yield_predictions": "models", "anomaly_model": "models",
        "yield_model": "models", "model_drift": "models", "sfr": "optics", "module_optics": "optics",
        "station_spc": "stations", "station_alarms": "stations",
        "capture_plans": "capture_plans",
        "spatial_model": "models", "spatial_scores": "models",
    }
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        if key.to_user_string() in ("final_test", "warehouse", "anomaly_model", "yield_model", "spatial_model",
                                    "model_drift", "capture_plans"):
            assert partitions is None  # over the whole fleet
            continue
        assert isinstance(partitions, DynamicPartitionsDefinition)  # only days with data are listed
        assert partitions.name == "capture_days"
    assert AssetKey("captures") in graph.get(AssetKey("module_stats")).parent_keys
    assert AssetKey("final_test") in graph.get(AssetKey("warehouse")).parent_keys
    assert graph.get(AssetKey("warehouse")).pools == {"warehouse_writer"}
    schema = graph.get(AssetKey("final_test")).metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns][:3] == ["module_id", "tested_at", "passed"]

    for key in graph.get_all_asset_keys():
        node, name = graph.get(key), key.to_user_string()
        assert node.description and node.owners and node.kinds, name
        if name not in ("anomaly_model", "yield_model", "spatial_model", "model_drift", "warehouse"):
            assert node.code_version, name
        # the daily tables, and the models (a missed weekly retrain shows)
        expect_freshness = node.partitions_def is not None or name in ("anomaly_model", "yield_model", "spatial_model")
        assert (node.freshness_policy is not None) == expect_freshness, name
        if "parquet" in node.kinds:
            assert "dagster/column_schema" in node.metadata, name

    checks = set(graph.asset_check_keys)
    assert checks == {
        AssetCheckKey(AssetKey("captures"), "no_rejected_sessions"),
        AssetCheckKey(AssetKey("captures"), "no_unexpected_saturation"),
        AssetCheckKey(AssetKey("captures"), "operating_points_complete"),
        AssetCheckKey(AssetKey("module_stats"), "metrics_within_physical_bounds"),
        AssetCheckKey(AssetKey("module_stats"), "ptc_fit_quality"),
        AssetCheckKey(AssetKey("final_test"), "no_rejected_label_rows"),
        AssetCheckKey(AssetKey("module_features"), "feature_null_rate"),
        AssetCheckKey(AssetKey("module_features"), "feature_drift_psi"),
        AssetCheckKey(AssetKey("model_drift"), "line_within_training_distribution"),
        AssetCheckKey(AssetKey("module_optics"), "edges_found_per_chart"),
        AssetCheckKey(AssetKey("sfr"), "mtf50_within_physical_bounds"),
        AssetCheckKey(AssetKey("station_alarms"), "stations_within_limits"),
    }

    jobs = {j.name for j in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    assert jobs == {"daily_pipeline", "ingest", "characterize", "rebuild_features", "refresh_warehouse", "retrain",
                    "capture_plan_study"}
    daily = {k.to_user_string() for k in defs.resolve_job_def("daily_pipeline").asset_layer.selected_asset_keys}
    assert {"anomaly_scores", "spatial_scores"} <= daily  # scored by the champions after characterization
    assert not daily & {"anomaly_model", "yield_model", "spatial_model"}  # never trains by accident
    retrain = {k.to_user_string() for k in defs.resolve_job_def("retrain").asset_layer.selected_asset_keys}
    assert retrain == {"anomaly_model", "yield_model", "spatial_model", "model_drift"}
    assert AssetKey("pixel_maps") in graph.get(AssetKey("spatial_scores")).parent_keys
    assert {"station_spc", "station_alarms"} <= daily
    assert "capture_plans" not in daily  # the study is weekly, in its own job
    study = {k.to_user_string() for k in defs.resolve_job_def("capture_plan_study").asset_layer.selected_asset_keys}
    assert study == {"capture_plans"}
    for name in jobs:
        assert defs.resolve_job_def(name).executor_def.name == "in_process"

    sensors = list(defs.sensors or [])
    assert [s.name for s in sensors] == ["landing_sensor", "final_test_sensor", "warehouse_after_daily_run"]
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors)
    assert sensors[0].job_name == "daily_pipeline"
    assert sensors[1].job_name == sensors[2].job_name == "refresh_warehouse"
    schedules = list(defs.schedules or [])
    assert [(s.name, s.job_name, s.default_status) for s in schedules] == [
        ("retrain_weekly", "retrain", DefaultScheduleStatus.RUNNING),
        ("capture_plan_study_weekly", "capture_plan_study", DefaultScheduleStatus.RUNNING)]
    assert set(defs.resources or {}) == {"storage"}


def test_dagster_cli_validates_the_code_location(tmp_path: Path) -> None:
    """What ``make dev`` loads: ``dagster definitions validate`` finds the ``@dg.definitions``
    function of ``pipelines.definitions`` and builds it without error."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-m", "pipelines.definitions"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr
