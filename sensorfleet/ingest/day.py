"""Ingest every landing session of one capture day, in parallel processes, and rebuild the day's
partitions of the ``sessions``, ``captures`` and ``rejections`` tables.

The zarr groups are the source of truth: the ``sessions`` and ``captures`` partitions are rebuilt
from the complete groups of the day (so unchanged sessions keep their rows), the ``rejections``
partition from this run's rejections (a fixed session drops out of it on the next run).
Schemas and units: docs/tables.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from sensorfleet import registry
from sensorfleet.config import Paths
from sensorfleet.ingest import store
from sensorfleet.ingest.scan import sessions_for_day
from sensorfleet.ingest.session import IngestResult, ingest_session
from sensorfleet.ingest.validate import Rejection
from sensorfleet.locks import day_tables_lock_file, file_lock
from sensorfleet.manifest import capture_date, count_operating_points
from sensorfleet.parallel import Outcome, Threads, available_cores, run_each
from sensorfleet.tables import write_partition

UTC_US = pl.Datetime("us", "UTC")

# Schemas come from the registry (sensorfleet/registry), the one declaration of every column.
SESSIONS_SCHEMA: dict[str, pl.DataType] = registry.SESSIONS.polars_schema()
CAPTURES_SCHEMA: dict[str, pl.DataType] = registry.CAPTURES.polars_schema()
REJECTIONS_SCHEMA: dict[str, pl.DataType] = registry.REJECTIONS.polars_schema()


WORKER_THREADS = Threads(blosc=1)
"""Pool workers: one blosc thread each (the workers already fill the cores; blosc's own threads
only add CPU for synchronisation, ~15-20 % of the compression here)."""


class IngestError(RuntimeError):
    """Sessions that failed for a reason other than bad input (no space left on device, a crashed
    worker). ``report`` holds what the run did publish (the message counts it too)."""

    def __init__(self, message: str, report: DayIngestReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class DayIngestReport:
    """Outcome of :func:`ingest_day`. Totals cover the sessions of this run that are stored
    (ingested, rewritten or unchanged); bytes are raw input and zarr on disk."""

    day: str
    results: tuple[IngestResult, ...]

    def _count(self, *statuses: str) -> int:
        return sum(r.status in statuses for r in self.results)

    @property
    def n_ingested(self) -> int:
        """Sessions written by this run (new or rewritten)."""
        return self._count("ingested", "rewritten")

    @property
    def n_rewritten(self) -> int:
        return self._count("rewritten")

    @property
    def n_unchanged(self) -> int:
        return self._count("unchanged")

    @property
    def n_rejected(self) -> int:
        return self._count("rejected")

    def _stored(self) -> list[IngestResult]:
        return [r for r in self.results if r.status != "rejected"]

    @property
    def n_frames(self) -> int:
        return sum(r.n_frames for r in self._stored())

    @property
    def bytes_in(self) -> int:
        return sum(r.bytes_in for r in self._stored())

    @property
    def bytes_stored(self) -> int:
        return sum(r.bytes_stored for r in self._stored())

    @property
    def compression_ratio(self) -> float:
        """Raw input bytes / stored bytes (nan when nothing is stored)."""
        return self.bytes_in / self.bytes_stored if self.bytes_stored else float("nan")

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        return tuple(rej for r in self.results for rej in r.rejections)


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def _manifest_columns(m: dict[str, Any]) -> dict[str, Any]:
    sensor = m["sensor"]
    return {
        "session_id": m["session_id"], "module_id": m["module_id"], "station_id": m["station_id"],
        "captured_at": _ts(m["captured_at"]), "temperature_c": m["temperature_c"],
        "schema_version": m["schema_version"], "pixel_format": m["pixel_format"],
        **{k: sensor[k] for k in ("lot_id", "wafer_id", "die_x", "die_y", "width", "height",
                                  "bit_depth", "cfa_pattern", "pixel_pitch_um")},
        "n_operating_points": count_operating_points((f["kind"], f["exposure_s"], f["photons_per_pixel"]) for f in m["frames"]),
    }


def session_rows(groups: Iterable[Path], results: Iterable[IngestResult], day: str,
                 written_at: datetime, locate: Callable[[Path], str] = str) -> pl.DataFrame:
    """``sessions`` rows: one per complete group of the day, plus one per session rejected by
    this run that has no group and a readable manifest. ``locate``: a group's ``zarr_path`` as
    readers see it (its ``s3://`` URL on an object root)."""
    by_id: dict[str | None, IngestResult] = {r.session_id: r for r in results if r.session_id is not None}
    rows = []
    stored = set()
    for g in groups:
        a = store.read_group_attrs(g) or {}
        sid = a.get("session_id")
        stored.add(sid)
        run = by_id.get(sid)
        rows.append({
            **_manifest_columns(a["manifest"]),
            "n_frames": a.get("n_frames"), "status": "ingested",
            "last_run": run.status if run else None, "n_rejections": len(run.rejections) if run else 0,
            "zarr_path": locate(g), "content_hash": a.get("content_hash"),
            "manifest_sha256": a.get("manifest_sha256"), "bytes_in": a.get("bytes_in"),
            "bytes_stored": a.get("bytes_stored"), "source_dir": a.get("source_dir"),
            "ingested_at": _ts(a.get("ingested_at")), "n_rewrites": len(a.get("history") or []),
            "sensorfleet_version": a.get("sensorfleet_version"), "written_at": written_at,
        })
    for r in by_id.values():
        if r.status != "rejected" or r.session_id in stored or r.capture_date != day or r.manifest is None:
            continue
        m = r.manifest
        if capture_date(datetime.fromisoformat(m["captured_at"])) != day:
            continue  # a day without a partition, filed here: its rejection rows say so
        rows.append({
            **_manifest_columns(m), "n_frames": len(m["frames"]), "status": "rejected",
            "last_run": "rejected", "n_rejections": len(r.rejections), "source_dir": str(r.session_dir),
            "written_at": written_at,
        })
    return pl.DataFrame(rows, schema=SESSIONS_SCHEMA)


def capture_rows(groups: Iterable[Path], written_at: datetime) -> pl.DataFrame:
    """``captures`` rows: one per frame of every complete group, from the group attributes."""
    cols = [c for c in CAPTURES_SCHEMA if c not in ("session_id", "module_id", "frame_index", "captured_at", "written_at")]
    rows = []
    for g in groups:
        a = store.read_group_attrs(g) or {}
        m = a["manifest"]
        captured_at = _ts(m["captured_at"])
        for f in a.get("frames") or []:
            rows.append({
                "session_id": a["session_id"], "module_id": m["module_id"], "frame_index": f["index"],
                **{c: f.get(c) for c in cols}, "captured_at": captured_at, "written_at": written_at,
            })
    return pl.DataFrame(rows, schema=CAPTURES_SCHEMA)


def rejection_rows(results: Iterable[IngestResult], day: str, written_at: datetime) -> pl.DataFrame:
    """``rejections`` rows of this run's results that belong to ``day``."""
    rows = []
    for r in results:
        if r.capture_date != day:
            continue
        captured_at = _ts(r.manifest["captured_at"]) if r.manifest is not None else None
        for rej in r.rejections:
            rows.append({
                "source": "landing", "session_id": rej.session_id, "session_dir": rej.session_dir,
                "file": rej.file, "row_number": None, "reason": rej.reason, "rejected_at": rej.rejected_at.astimezone(UTC),
                "captured_at": captured_at, "written_at": written_at,
            })
    return pl.DataFrame(rows, schema=REJECTIONS_SCHEMA)


def _locator(paths: Paths) -> Callable[[Path], str]:
    if paths.root_url is None:
        return str
    return lambda group: paths.location(group.relative_to(paths.root).as_posix())


def write_day_tables(paths: Paths, day: str, results: Iterable[IngestResult]) -> dict[str, Path]:
    """Rebuild the ``day`` partitions of ``sessions``, ``captures`` and ``rejections`` (under the
    day's tables lock: a session moving away from the day meanwhile waits, so no row is written
    for a group that is gone)."""
    results = list(results)
    with file_lock(day_tables_lock_file(paths, day)):
        groups = store.list_ingested(paths, day)
        now = datetime.now(UTC)
        return {
            "sessions": write_partition(paths.tables, "sessions", day, session_rows(groups, results, day, now, _locator(paths))),
            "captures": write_partition(paths.tables, "captures", day, capture_rows(groups, now)),
            "rejections": write_partition(paths.tables, "rejections", day, rejection_rows(results, day, now)),
        }


def ingest_day(paths: Paths, day: str, *, workers: int = 2,
               progress: Callable[[IngestResult], None] | None = None) -> DayIngestReport:
    """Ingest every landing session of ``day`` (``YYYY-MM-DD``) and rebuild the day's tables.

    Sessions run independently in a ``spawn`` process pool of ``workers`` processes
    (``workers=1``: in this process), each session's frames on the cores left to its worker
    (:mod:`sensorfleet.ingest.frames`). ``progress`` is called in this process once per finished
    session. Bad input gives rejections; any other failure of a session is raised as
    :class:`IngestError` after the tables of the sessions that succeeded are written.
    """
    sessions = sessions_for_day(paths.landing, day, cache_dir=paths.state)
    store.clean_stale_temp(paths, day)
    results: list[IngestResult] = []
    failures: list[str] = []

    def done(outcome: Outcome[Path, IngestResult]) -> None:
        if outcome.error is not None or outcome.value is None:
            failures.append(f"{outcome.item}: {outcome.error_text}")
            return
        results.append(outcome.value)
        if progress is not None:
            progress(outcome.value)

    n_workers = workers if len(sessions) > 1 else 1
    # frame threads per session: the cores left to each worker (all of them in this process)
    frame_threads = None if n_workers == 1 else max(1, available_cores() // n_workers)
    run_each(partial(ingest_session, paths=paths, threads=frame_threads), [s.session_dir for s in sessions],
             workers=n_workers, threads=WORKER_THREADS, on_done=done)
    results.sort(key=lambda r: str(r.session_dir))
    report = DayIngestReport(day, tuple(results))
    try:
        write_day_tables(paths, day, results)
    except OSError as exc:
        failures.append(f"tables of {day}: {str(exc.strerror or exc).lower()}: {exc.filename} (errno {exc.errno})")
    if failures:
        raise IngestError(
            f"day {day}: {len(failures)} failure(s) not caused by the input; published by this run: "
            f"{report.n_ingested} ingested ({report.n_rewritten} rewritten), {report.n_unchanged} unchanged, "
            f"{report.n_rejected} rejected; run the day again once fixed:\n" + "\n".join(failures),
            report,
        )
    return report

