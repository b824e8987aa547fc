"""Sensor on the landing root: one run request per capture day with new or changed sessions."""

# No `from __future__ import annotations`: Dagster reads the resource annotation of the sensor.
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import (
    DefaultSensorStatus,
    PartitionsDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

from assets._common import PARTITION_TAG
from pipelines.resources import StorageResource
from sensorfleet.ingest.scan import LandingSession, scan_landing


def session_fingerprint(session: LandingSession) -> str:
    """What identifies a session's content for change detection: its id, the manifest's sha256,
    and the (name, size, mtime_ns) of every file in its folder (one ``scandir`` per session)."""
    files: list[tuple[str, int, int]] = []
    try:
        with os.scandir(session.session_dir) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    files.append((entry.name, st.st_size, st.st_mtime_ns))
    except OSError:
        pass  # vanished or unreadable: the ingest step reports it
    files.sort()
    return json.dumps(
        [session.session_dir.name, session.session_id, session.manifest_sha256, session.error, files],
        separators=(",", ":"),
    )


def day_fingerprints(sessions: Iterable[LandingSession]) -> dict[str, str]:
    """``{capture day: sha256 over its sessions' fingerprints}``; changes iff a session of the
    day was added, removed or changed (manifest or any frame file's size or mtime)."""
    per_day: dict[str, list[str]] = defaultdict(list)
    for session in sessions:
        per_day[session.capture_date].append(session_fingerprint(session))
    return {
        day: hashlib.sha256("\n".join(sorted(prints)).encode()).hexdigest()
        for day, prints in sorted(per_day.items())
    }


def run_key(day: str, fingerprint: str) -> str:
    """Run key of a day's state: the same landing content never gets a second run request."""
    return f"{day}:{fingerprint[:20]}"


def build_landing_sensor(
    job: "UnresolvedAssetJobDefinition", partitions_def: PartitionsDefinition, minimum_interval_seconds: int = 30
) -> SensorDefinition:
    """A sensor (running by default) requesting ``job`` for each day whose landing content changed.

    The cursor holds the last requested fingerprint per day, so an unchanged day is never
    re-requested; the run key (day + fingerprint) makes the daemon drop duplicates too. A second
    run of the same day is harmless (the ingest is idempotent and publishes atomically) and the
    ``sensorfleet/partition`` tag lets dagster.yaml queue it behind the first.
    """

    @sensor(
        name="landing_sensor",
        job=job,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Watches the landing root; requests a run for each capture day with new or changed sessions.",
    )
    def landing_sensor(context: SensorEvaluationContext, storage: StorageResource) -> SensorResult | SkipReason:
        paths = storage.paths()
        if not Path(paths.landing).is_dir():
            return SkipReason(f"landing root {paths.landing} does not exist")
        sessions = scan_landing(paths.landing, paths.state)
        current = day_fingerprints(sessions)
        previous: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests = []
        outside = []
        for day, fingerprint in current.items():
            if previous.get(day) == fingerprint:
                continue
            if not partitions_def.has_partition_key(day):
                outside.append(day)
                continue
            requests.append(
                RunRequest(run_key=run_key(day, fingerprint), partition_key=day, tags={PARTITION_TAG: day})
            )
        if outside:
            context.log.warning(
                f"capture days outside the partitions ({', '.join(outside)}): no run requested; "
                "check the stations' clocks"
            )
        # Days whose sessions all vanished are forgotten; new data on them counts as new again.
        cursor = json.dumps(current, separators=(",", ":"))
        if not requests:
            return SensorResult(
                skip_reason=SkipReason(f"{len(sessions)} sessions on {len(current)} days, none new or changed"),
                cursor=cursor,
            )
        context.log.info(f"requesting runs for {len(requests)} day(s): {', '.join(r.partition_key or '' for r in requests)}")
        return SensorResult(run_requests=requests, cursor=cursor)

    return landing_sensor
