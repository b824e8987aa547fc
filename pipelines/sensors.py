"""Sensors: on the landing root (one run request per capture day with new or changed sessions),
on the final-test files, and after each successful daily run (the warehouse follows the tables)."""

# No `from __future__ import annotations`: Dagster reads the resource annotation of the sensor.
import hashlib
import json

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from assets._common import PARTITION_TAG
from assets.captures import CAPTURES
from assets.labels import final_test_files_state
from assets.landing_state import FINGERPRINT_METADATA_KEY, day_fingerprints
from assets.resources import StorageResource
from pipelines.jobs import daily_pipeline, refresh_warehouse
from pipelines.partitions import capture_day_problem
from sensorfleet.ingest.scan import scan_landing
from sensorfleet.labels.final_test import final_test_files


def run_key(day: str, fingerprint: str) -> str:
    """Run key of a day's state: the same landing content never gets a second run request."""
    return f"{day}:{fingerprint[:20]}"


def build_landing_sensor(
    job_name: str, partitions_def: DynamicPartitionsDefinition, minimum_interval_seconds: int = 30
) -> SensorDefinition:
    """A sensor (running by default) requesting the job ``job_name`` for each day whose landing
    content changed (the job must be in the same ``Definitions``).

    The cursor holds the last requested fingerprint per day, so an unchanged day is never
    re-requested; the run key (day + fingerprint) makes the daemon drop duplicates too. A new or
    changed day is skipped when its latest ``captures`` materialization recorded the
    same fingerprint (it was run from the CLI or the UI with this content). A second
    run of the same day is harmless (the ingest is idempotent and publishes atomically) and the
    ``dagster/partition`` tag lets dagster.yaml queue it behind the first.
    """

    @sensor(
        name="landing_sensor",
        job_name=job_name,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Watches the landing root; requests a run for each capture day with new or changed sessions.",
    )
    def landing_sensor(context: SensorEvaluationContext, storage: StorageResource) -> SensorResult | SkipReason:
        landing, cache = storage.watched_landing()
        if not landing.is_dir():
            return SkipReason(f"landing root {landing} does not exist")
        sessions = scan_landing(landing, cache)
        current = day_fingerprints(sessions)
        previous: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests = []
        outside = []
        for day, fingerprint in current.items():
            if previous.get(day) == fingerprint:
                continue
            if capture_day_problem(day) is not None:
                outside.append(day)
                continue
            if _materialized_with(context.instance, day, fingerprint):
                continue  # done already (e.g. by `sensorfleet pipeline run`) from this very content
            requests.append(
                RunRequest(run_key=run_key(day, fingerprint), partition_key=day, tags={PARTITION_TAG: day})
            )
        if outside:
            context.log.warning(
                f"capture days outside the accepted range ({', '.join(outside)}): no run requested; "
                "check the stations' clocks"
            )
        # Days whose sessions all vanished are forgotten; new data on them counts as new again.
        cursor = json.dumps(current, separators=(",", ":"))
        if not requests:
            return SensorResult(
                skip_reason=SkipReason(f"{len(sessions)} sessions on {len(current)} days, none new or changed"),
                cursor=cursor,
            )
        days = [r.partition_key or "" for r in requests]
        context.log.info(f"requesting runs for {len(requests)} day(s): {', '.join(days)}")
        # the days join the partitions (only days with data are listed) before their runs start
        new_days = [d for d in days if not context.instance.has_dynamic_partition(partitions_def.name or "", d)]
        partition_requests = [partitions_def.build_add_request(new_days)] if new_days else []
        return SensorResult(run_requests=requests, cursor=cursor, dynamic_partitions_requests=partition_requests)

    return landing_sensor


def _materialized_with(instance: DagsterInstance, day: str, fingerprint: str) -> bool:
    """True when the latest ``captures`` materialization of ``day`` recorded ``fingerprint``."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(CAPTURES), asset_partitions=[day]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return False
    entry = records[0].asset_materialization.metadata.get(FINGERPRINT_METADATA_KEY)
    return getattr(entry, "value", entry) == fingerprint


def build_final_test_sensor(job_name: str, minimum_interval_seconds: int = 30) -> SensorDefinition:
    """A sensor (running by default) requesting ``job_name`` when the files under
    ``<landing>/final_test/`` change (name, size, modification time): a new label file is
    ingested without waiting for the next capture day."""

    @sensor(
        name="final_test_sensor",
        job_name=job_name,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Watches <landing>/final_test/; requests the label + warehouse refresh when a file is added or changed.",
    )
    def final_test_sensor(context: SensorEvaluationContext, storage: StorageResource) -> SensorResult | SkipReason:
        landing, _ = storage.watched_landing()
        files = final_test_files(landing)
        cursor = final_test_files_state(landing)
        if not files or cursor == context.cursor:
            return SensorResult(skip_reason=SkipReason(f"{len(files)} final-test file(s), none new or changed"), cursor=cursor)
        return SensorResult(run_requests=[RunRequest(run_key="final_test:" + hashlib.sha256(cursor.encode()).hexdigest()[:20])], cursor=cursor)

    return final_test_sensor


WAITING_TO_START = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING]
"""Run states in which a warehouse refresh has not read any table yet."""


@run_status_sensor(
    name="warehouse_after_daily_run",
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[daily_pipeline],
    request_job=refresh_warehouse,
    default_status=DefaultSensorStatus.RUNNING,
    description="After a successful daily run, refresh the labels and the warehouse, unless a refresh is "
                "already waiting to start (it will read this run's tables too).",
)
def warehouse_after_daily_run(context: RunStatusSensorContext) -> RunRequest | SkipReason:
    """The warehouse publish is fleet-wide, not per partition: one refresh that has not started
    yet serves every daily run that finishes before it starts, so a backfill of many days (runs
    spread over machines, docs/operations.md#sizing) queues one refresh at a time, not one per day."""
    waiting = context.instance.get_runs_count(RunsFilter(job_name=refresh_warehouse.name, statuses=WAITING_TO_START))
    if waiting:
        return SkipReason(f"a {refresh_warehouse.name} run is already waiting to start: it will read the tables "
                          f"of run {context.dagster_run.run_id}")
    return RunRequest(run_key=f"after:{context.dagster_run.run_id}")
