"""The CLI's no-change path: which days (and whether the fleet-wide assets) need no run at all.

Starting an in-process run costs seconds whatever it does (13 unchanged demo days took 54 s to
find nothing to do). Before running, ``pipeline run`` compares what a run would read with what
the instance recorded: a day is up to date when the latest ``captures`` materialization of it
recorded the day's current landing fingerprint, and every selected asset's latest
materialization of the day is at least as recent and was made by its current ``code_version``.
A failed or partial run, a new or changed session, or changed code therefore runs the day
again; ``--force`` runs it anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, EventLogRecord

from assets.captures import CAPTURES
from assets.labels import FILES_STATE_METADATA_KEY, FINAL_TEST_ASSET
from assets.landing_state import FINGERPRINT_METADATA_KEY
from assets.warehouse import WAREHOUSE

CODE_VERSION_TAG = "dagster/code_version"
"""Tag of a materialization naming the ``code_version`` of the definition that made it."""


def latest_materialization(instance: DagsterInstance, key: AssetKey, day: str | None = None) -> EventLogRecord | None:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[day] if day else None), limit=1
    ).records
    return records[0] if records and records[0].asset_materialization is not None else None


def metadata_value(record: EventLogRecord, key: str) -> object:
    materialization = record.asset_materialization
    entry = materialization.metadata.get(key) if materialization is not None else None
    return getattr(entry, "value", entry)


def _current(record: EventLogRecord | None, since: int, code_version: str | None) -> bool:
    """``record`` exists, is at least as recent as storage id ``since`` and was made by ``code_version``."""
    if record is None or record.storage_id < since or record.asset_materialization is None:
        return False
    tags = record.asset_materialization.tags or {}
    return code_version is None or tags.get(CODE_VERSION_TAG) == code_version


def up_to_date_days(
    instance: DagsterInstance,
    fingerprints: Mapping[str, str],
    selection: Sequence[AssetKey],
    code_versions: Mapping[AssetKey, str | None],
) -> dict[str, EventLogRecord]:
    """The days of ``fingerprints`` (``{day: landing fingerprint}``) whose ``selection`` needs no
    run, each with its latest ``captures`` materialization (what the summary reports for it)."""
    fresh = {}
    for day, fingerprint in fingerprints.items():
        captured = latest_materialization(instance, AssetKey(CAPTURES), day)
        if captured is None or metadata_value(captured, FINGERPRINT_METADATA_KEY) != fingerprint:
            continue
        if all(_current(latest_materialization(instance, key, day), captured.storage_id, code_versions.get(key)) for key in selection):
            fresh[day] = captured
    return fresh


def fleet_up_to_date(
    instance: DagsterInstance,
    files_state: str,
    selection: Sequence[AssetKey],
    daily_keys: Iterable[AssetKey],
    code_versions: Mapping[AssetKey, str | None],
) -> bool:
    """True when the fleet-wide ``selection`` (labels, warehouse) needs no run: the labels were
    read from the label files as they are now, and the warehouse is newer than every daily
    table's and the labels' latest materialization; both by their current code."""
    labels = latest_materialization(instance, AssetKey(FINAL_TEST_ASSET))
    if AssetKey(FINAL_TEST_ASSET) in selection:
        if labels is None or metadata_value(labels, FILES_STATE_METADATA_KEY) != files_state:
            return False
        if not _current(labels, 0, code_versions.get(AssetKey(FINAL_TEST_ASSET))):
            return False
    if AssetKey(WAREHOUSE) in selection:
        inputs = [latest_materialization(instance, key) for key in [*daily_keys, AssetKey(FINAL_TEST_ASSET)]]
        newest_input = max((r.storage_id for r in inputs if r is not None), default=0)
        if not _current(latest_materialization(instance, AssetKey(WAREHOUSE)), newest_input + 1, code_versions.get(AssetKey(WAREHOUSE))):
            return False
    return True
