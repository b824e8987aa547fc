"""The Dagster code location: ``dagster dev -m pipelines.definitions`` loads ``defs``.

``defs`` is a ``@dg.definitions`` function: the graph is built when Dagster (or a test) loads
the location, not when the module is imported.
"""

from __future__ import annotations

import dagster as dg

from assets import build_assets
from pipelines.jobs import DAILY_PIPELINE, JOBS
from pipelines.partitions import capture_days
from pipelines.resources import deployment_resources
from pipelines.sensors import build_landing_sensor


def pipeline_assets() -> list[dg.AssetsDefinition]:
    """Every asset of the location on the capture-day partitions (``pipeline run`` materializes
    these same definitions)."""
    return build_assets(capture_days)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=pipeline_assets(),
        resources=deployment_resources(),
        jobs=JOBS,
        sensors=[build_landing_sensor(DAILY_PIPELINE, capture_days)],
        # Materializations launched from the UI run in-process as well (see pipelines/jobs.py).
        executor=dg.in_process_executor,
    )
