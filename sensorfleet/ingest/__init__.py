"""Ingest: landing sessions -> validated, chunked zarr groups + the day's capture tables.

Dagster-free. ``scan_landing`` finds sessions cheaply, ``ingest_session`` stores one (or says
why not), ``ingest_day`` does a day's sessions in parallel processes and rebuilds the day's
``sessions``, ``captures`` and ``rejections`` partitions. See docs/storage.md, docs/tables.md.
"""

from sensorfleet.ingest.day import (
    CAPTURES_SCHEMA,
    REJECTIONS_SCHEMA,
    SESSIONS_SCHEMA,
    DayIngestReport,
    IngestError,
    ingest_day,
    write_day_tables,
)
from sensorfleet.ingest.scan import LandingSession, scan_landing, sessions_for_day
from sensorfleet.ingest.session import IngestResult, IngestStatus, content_hash, ingest_session
from sensorfleet.ingest.store import IncompleteSessionError, group_path, list_ingested, open_session
from sensorfleet.ingest.validate import Rejection

__all__ = [
    "CAPTURES_SCHEMA",
    "REJECTIONS_SCHEMA",
    "SESSIONS_SCHEMA",
    "DayIngestReport",
    "IncompleteSessionError",
    "IngestError",
    "IngestResult",
    "IngestStatus",
    "LandingSession",
    "Rejection",
    "content_hash",
    "group_path",
    "ingest_day",
    "ingest_session",
    "list_ingested",
    "open_session",
    "scan_landing",
    "sessions_for_day",
    "write_day_tables",
]
