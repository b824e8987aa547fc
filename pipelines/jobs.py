"""Jobs: the whole daily graph, and each layer alone.

All run with the in-process executor: the steps parallelize inside themselves (worker processes
per session), and the multiprocess executor would re-import the code location for every step.
Partitioned like their assets (Dagster infers it from the selection).
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
)

DAILY_PIPELINE = "daily_pipeline"
"""Name of the job that ingests and characterizes one capture day (what the sensor requests)."""

REFRESH_WAREHOUSE = "refresh_warehouse"
"""Name of the job that rebuilds the fleet-wide assets: final-test labels, then the warehouse."""

RETRAIN = "retrain"
"""Name of the job that trains the models, registers them and reports drift (weekly schedule)."""
CAPTURE_PLAN_STUDY = "capture_plan_study"
"""Name of the job that runs the capture-plan study (weekly, after the retrain)."""
SCORES = ("anomaly_scores", "yield_predictions", "spatial_scores")
MODELS = ("anomaly_model", "yield_model", "spatial_model", "model_drift")

daily_pipeline = define_asset_job(
    DAILY_PIPELINE,
    selection=AssetSelection.groups("captures", "characterization", "optics", "stations", "features") | AssetSelection.assets(*SCORES),
    executor_def=in_process_executor,
    description="Ingest and characterize one capture day, then its station charts, its point-in-time features "
    "and its scores by the champion models.",
)
ingest = define_asset_job(
    "ingest",
    selection=AssetSelection.groups("captures"),
    executor_def=in_process_executor,
    description="Ingest one capture day (captures, rejections).",
)
characterize = define_asset_job(
    "characterize",
    selection=AssetSelection.groups("characterization"),
    executor_def=in_process_executor,
    description="Characterize one capture day from its ingested captures.",
)

rebuild_features = define_asset_job(
    "rebuild_features",
    selection=AssetSelection.groups("features"),
    executor_def=in_process_executor,
    description="Rebuild one capture day's point-in-time features from its tables (after a feature "
    "view changed: backfill the days from the job's Partitions tab).",
)

refresh_warehouse = define_asset_job(
    REFRESH_WAREHOUSE,
    selection=AssetSelection.groups("labels", "warehouse"),
    executor_def=in_process_executor,
    description="Ingest the final-test labels and rebuild warehouse.duckdb (after new days or label files).",
)

retrain = define_asset_job(
    RETRAIN,
    selection=AssetSelection.assets(*MODELS),
    executor_def=in_process_executor,
    description="Train the anomaly, yield and spatial models on the current feature store and maps, register them in MLflow "
    "(champion only if not worse on the same held-out lots), and report drift. Weekly, and by hand.",
)

retrain_weekly = ScheduleDefinition(
    name="retrain_weekly", job=retrain, cron_schedule="0 4 * * 1", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Retrain the models every Monday 04:00 UTC (the models' freshness policy fails after 8 days).",
)

capture_plan_study = define_asset_job(
    CAPTURE_PLAN_STUDY,
    selection=AssetSelection.assets("capture_plans"),
    executor_def=in_process_executor,
    description="Re-characterize a sample of modules on shorter capture plans from their stored frames and "
    "recommend the shortest plan whose metrics and champion decisions match the full one. Weekly, after the retrain.",
)

capture_plan_study_weekly = ScheduleDefinition(
    name="capture_plan_study_weekly", job=capture_plan_study, cron_schedule="0 6 * * 1", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The capture-plan study every Monday 06:00 UTC, two hours after the retrain (its decisions are the "
    "new champions').",
)

JOBS = (daily_pipeline, ingest, characterize, rebuild_features, refresh_warehouse, retrain, capture_plan_study)
SCHEDULES = (retrain_weekly, capture_plan_study_weekly)
