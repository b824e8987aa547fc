"""The warehouse refresh after daily runs is coalesced: one refresh waiting to start serves every
daily run that finishes before it starts."""

from __future__ import annotations

import dagster as dg
from dagster._core.test_utils import create_run_for_test

from pipelines.jobs import DAILY_PIPELINE, REFRESH_WAREHOUSE
from pipelines.sensors import warehouse_after_daily_run


def _evaluate(instance: dg.DagsterInstance, run: dg.DagsterRun) -> object:
    event = dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=DAILY_PIPELINE)
    context = dg.build_run_status_sensor_context(sensor_name=warehouse_after_daily_run.name,
                                                 dagster_instance=instance, dagster_run=run, dagster_event=event)
    return warehouse_after_daily_run(context)


def test_a_refresh_is_requested_unless_one_is_waiting_to_start() -> None:
    with dg.instance_for_test() as instance:
        first = create_run_for_test(instance, job_name=DAILY_PIPELINE, status=dg.DagsterRunStatus.SUCCESS)
        second = create_run_for_test(instance, job_name=DAILY_PIPELINE, status=dg.DagsterRunStatus.SUCCESS)
        request = _evaluate(instance, first)
        assert isinstance(request, dg.RunRequest) and request.run_key == f"after:{first.run_id}"

        # created, not started (a queued run needs a code location's origin; both count as waiting)
        create_run_for_test(instance, job_name=REFRESH_WAREHOUSE, status=dg.DagsterRunStatus.NOT_STARTED)
        skipped = _evaluate(instance, second)
        assert isinstance(skipped, dg.SkipReason) and "waiting to start" in (skipped.skip_message or "")

        # a refresh already running may have read the tables before this run published them
        (waiting,) = instance.get_runs(dg.RunsFilter(job_name=REFRESH_WAREHOUSE))
        instance.report_run_canceled(waiting)
        create_run_for_test(instance, job_name=REFRESH_WAREHOUSE, status=dg.DagsterRunStatus.STARTED)
        assert isinstance(_evaluate(instance, second), dg.RunRequest)
