"""The Dagster code location: ``dagster dev -m pipelines.definitions`` loads ``defs``."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from assets import build_assets
from assets._common import STORAGE_KEY
from pipelines.jobs import build_jobs
from pipelines.partitions import capture_days
from pipelines.resources import StorageResource
from pipelines.sensors import build_landing_sensor

all_assets = build_assets(capture_days)
jobs = build_jobs()
landing_sensor = build_landing_sensor(jobs["daily_pipeline"], capture_days)

defs = Definitions(
    assets=all_assets,
    resources={STORAGE_KEY: StorageResource()},
    jobs=list(jobs.values()),
    sensors=[landing_sensor],
    # Materializations launched from the UI run in-process as well (see pipelines/jobs.py).
    executor=in_process_executor,
)
