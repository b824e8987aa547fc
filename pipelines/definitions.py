"""The Dagster code location: ``dagster dev -m pipelines.definitions`` loads ``defs``.

``defs`` is a ``@dg.definitions`` function: the graph is built when Dagster (or a test) loads
the location, not when the module is imported.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from assets import build_assets, build_fleet_assets, build_model_assets, build_plan_assets
from pipelines.jobs import DAILY_PIPELINE, JOBS, REFRESH_WAREHOUSE, SCHEDULES
from pipelines.partitions import capture_days
from pipelines.resources import deployment_resources
from pipelines.sensors import (
    build_final_test_sensor,
    build_landing_sensor,
    warehouse_after_daily_run,
)

DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=26))
"""The test line captures every day: a daily table not updated for 26 h warns, 48 h fails
(applied here, once, to every daily asset)."""


def pipeline_assets() -> list[dg.AssetsDefinition]:
    """The daily assets of the location on the capture-day partitions, with the daily freshness
    policy (``pipeline run`` materializes these same definitions)."""
    return list(dg.map_asset_specs(
        lambda spec: spec.replace_attributes(freshness_policy=DAILY_FRESHNESS), build_assets(capture_days)
    ))


def fleet_assets() -> list[dg.AssetsDefinition]:
    """The unpartitioned assets over the whole fleet (labels, warehouse)."""
    return build_fleet_assets()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[*pipeline_assets(), *fleet_assets(), *build_model_assets(), *build_plan_assets()],
        resources=deployment_resources(),
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=[
            build_landing_sensor(DAILY_PIPELINE, capture_days),
            build_final_test_sensor(REFRESH_WAREHOUSE),
            warehouse_after_daily_run,
        ],
        # Materializations launched from the UI run in-process as well (see pipelines/jobs.py).
        executor=dg.in_process_executor,
    )
