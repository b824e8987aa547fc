"""Ingest one landing session into its zarr group: validate, stream frame by frame, publish.

Decisions (see docs/storage.md):
- ``session_id`` must equal the folder name, so two folders of one landing root cannot claim the
  same id; the id-reuse check below still guards other landing roots and moved folders.
- Same folder, changed content -> "rewritten" (the old content hash goes into ``history``).
- Same id from another folder: equal content -> "unchanged" (a copy, nothing to do); different
  content -> rejected, the ingested group is kept.
- A rejected session never removes an already ingested group of the same id.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import xxhash

import sensorfleet
from sensorfleet import registry, tables
from sensorfleet.capture_days import filing_day, in_partitions, outside_reason
from sensorfleet.config import Paths
from sensorfleet.ingest import index, store
from sensorfleet.ingest.frames import write_frames
from sensorfleet.ingest.scan import mtime_day
from sensorfleet.ingest.validate import FramePlan, Problem, Rejection, check_session, open_regular
from sensorfleet.locks import day_tables_lock_file, file_lock
from sensorfleet.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    parse_manifest,
    read_manifest_bytes,
)


def session_tables() -> list[str]:
    """Day-partitioned tables with rows of one session (per session, frame, defect...): what a
    session leaving a capture day is removed from."""
    return [t.name for t in registry.TABLES.values()
            if "session_id" in t.column_names and t.partition_column == "capture_date"]

IngestStatus = Literal["ingested", "rewritten", "unchanged", "rejected"]


@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest_session` did with one landing folder.

    ``bytes_in`` is the raw input (sum of frame file sizes), ``bytes_stored`` the group on disk;
    for "unchanged" both come from the existing group. ``seconds`` is wall time.
    """

    session_id: str | None
    session_dir: Path
    capture_date: str
    status: IngestStatus
    rejections: tuple[Rejection, ...]
    n_frames: int
    bytes_in: int
    bytes_stored: int
    zarr_path: Path | None
    content_hash: str | None
    seconds: float
    manifest: dict[str, Any] | None = None
    """The validated manifest (``model_dump(mode="json")``) when it could be parsed, so the day's
    tables never read the landing again."""
    moved_from: tuple[str, ...] = ()
    """Capture days this run removed the session from (its ``captured_at`` changed day)."""


class StorageError(RuntimeError):
    """Writing under the data root failed for a reason that is not the input's (no space left on
    device, a read-only or failing disk); the message names the cause and the path."""


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


def storage_error(exc: OSError, fallback_path: Path) -> StorageError:
    """A :class:`StorageError` for ``exc``: ``"no space left on device: <path> (...)"``."""
    path = exc.filename or fallback_path
    cause = (exc.strerror or str(exc)).lower()
    return StorageError(f"{cause}: {path} (errno {exc.errno}); free space or fix the data root, then run the day again")


HASH_PREFIX = "xxh3_128:"
_READ_BLOCK = 1 << 22


def content_hash(manifest_bytes: bytes, frame_digests: list[bytes]) -> str:
    """Content hash of a session, ``"xxh3_128:<32 hex>"``: XXH3-128 over the manifest bytes
    followed by each frame file's 16-byte XXH3-128 digest in manifest order (it depends on every
    input byte, without a second pass over the frames). It detects change; it does not
    authenticate (XXH3 is not cryptographic)."""
    h = xxhash.xxh3_128(manifest_bytes)
    for digest in frame_digests:
        h.update(digest)
    return HASH_PREFIX + h.hexdigest()


def _hash_files(manifest_bytes: bytes, plans: list[FramePlan]) -> str:
    digests = []
    block = bytearray(_READ_BLOCK)
    view = memoryview(block)
    for plan in plans:
        h = xxhash.xxh3_128()
        with open_regular(plan.path) as f:
            while n := f.readinto(block):
                h.update(view[:n])
        digests.append(h.digest())
    return content_hash(manifest_bytes, digests)


def _cheap_same(attrs: dict[str, Any], manifest_sha: str, plans: list[FramePlan]) -> bool:
    """Same manifest bytes and every frame file with the recorded (size, mtime_ns, ctime_ns,
    inode). A file rewritten in place with its size and mtime put back still has a new ctime
    (only the kernel sets it), and one replaced by a rename a new inode; groups written before
    these were recorded lack them and always go to the content hash."""
    if attrs.get("manifest_sha256") != manifest_sha:
        return False
    frames = attrs.get("frames") or []
    if len(frames) != len(plans):
        return False
    return all(
        rec.get("size_bytes") == p.size_bytes and rec.get("mtime_ns") == p.mtime_ns
        and rec.get("ctime_ns") == p.ctime_ns and rec.get("inode") == p.inode
        for rec, p in zip(frames, plans, strict=True)
    )


class _Session:
    """Working state of one ingest call."""

    def __init__(self, session_dir: Path, paths: Paths, now: datetime, threads: int | None = None) -> None:
        self.session_dir = session_dir
        self.paths = paths
        self.now = now
        self.threads = threads
        self.t0 = time.perf_counter()

        self.manifest: dict[str, Any] | None = None

    def result(self, sid: str | None, day: str, status: IngestStatus, *, problems: Sequence[Problem] = (),
               attrs: dict[str, Any] | None = None, zarr_path: Path | None = None,
               moved_from: Sequence[str] = ()) -> IngestResult:
        rejections = tuple(
            Rejection(sid, str(self.session_dir), p.file, p.reason, self.now) for p in problems
        )
        a = attrs or {}
        return IngestResult(
            session_id=sid,
            session_dir=self.session_dir,
            capture_date=day,
            status=status,
            rejections=rejections,
            n_frames=int(a.get("n_frames", 0)),
            bytes_in=int(a.get("bytes_in", 0)),
            bytes_stored=int(a.get("bytes_stored", 0)),
            zarr_path=zarr_path,
            content_hash=a.get("content_hash"),
            seconds=time.perf_counter() - self.t0,
            manifest=self.manifest,
            moved_from=tuple(moved_from),
        )


def ingest_session(session_dir: Path, paths: Paths, *, ingested_at: datetime | None = None,
                   threads: int | None = None) -> IngestResult:
    """Validate one landing session and store it as ``captures/<day>/<session_id>.zarr``.

    Never raises for anything the folder holds: every problem found becomes a :class:`Rejection`
    of the result (status "rejected"), including a capture day without a partition (filed under
    today) and any unexpected error while reading it (the failure boundary of one session).
    Raises :class:`StorageError` only when writing under the data root fails (no space left on
    device...), after deleting what it had written. Unchanged content does no work; changed
    content of the same folder is rewritten atomically and recorded in the group's ``history``.
    Input files are only read. Frames are processed on ``threads`` threads (None: the cores this
    process may use; :mod:`sensorfleet.ingest.frames`). Memory: one frame per thread (raw bytes +
    one ``(H, W) uint16`` frame + its chunks).
    """
    session_dir = Path(session_dir).absolute()
    s = _Session(session_dir, paths, ingested_at or datetime.now(UTC), threads)
    try:
        return _ingest(s)
    except StorageError:
        raise
    except OSError as exc:
        if exc.errno in _STORAGE_ERRNOS:
            raise storage_error(exc, paths.root) from exc
        if exc.filename is not None and not str(exc.filename).startswith(str(session_dir)):
            raise  # the data root, not the input: not the session's fault
        return _unexpected(s, exc)
    except Exception as exc:  # the boundary: nothing in one folder fails the day
        return _unexpected(s, exc)


def _unexpected(s: _Session, exc: BaseException) -> IngestResult:
    name = os.path.relpath(exc.filename, s.session_dir) if isinstance(exc, OSError) and exc.filename else MANIFEST_NAME
    reason = (f"could not be ingested ({type(exc).__name__}: {str(exc)[:300]}); "
              "expected a session the checks accept (report it if the folder looks valid)")
    return s.result(None, filing_day(mtime_day(s.session_dir)), "rejected", problems=[Problem(name, reason)])


def _ingest(s: _Session) -> IngestResult:
    session_dir, paths, now = s.session_dir, s.paths, s.now
    manifest_path = session_dir / MANIFEST_NAME
    try:
        manifest_bytes = read_manifest_bytes(manifest_path)
        manifest = parse_manifest(manifest_bytes, manifest_path)
    except ManifestError as exc:
        missing = not manifest_path.exists()
        day = mtime_day(session_dir if missing else manifest_path)
        return s.result(None, filing_day(day, now), "rejected", problems=[Problem(MANIFEST_NAME, exc.reason)])

    sid, day = manifest.session_id, manifest.capture_date
    s.manifest = manifest.model_dump(mode="json")
    if not in_partitions(day, now):
        return s.result(sid, filing_day(day, now), "rejected", problems=[Problem(MANIFEST_NAME, outside_reason(day, now))])
    plans, problems = check_session(session_dir, manifest)
    if problems:
        return s.result(sid, day, "rejected", problems=problems)
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()

    index.ensure_built(paths)  # once per data root; before the session lock (the builder takes them)
    with store.session_lock(paths, sid):
        store.recover(paths, day, sid)
        existing = store.find_groups(paths, sid)
        here = store.group_path(paths, day, sid)
        if here not in existing and store.is_complete(here):  # written without the index: index it
            index.add_day(paths, sid, day)
            existing = sorted([*existing, here])
        prior = next((g for g in existing if g.parent.name == day), existing[0] if existing else None)
        prior_attrs = store.read_group_attrs(prior) if prior is not None else None
        history: list[dict[str, Any]] = []
        status: IngestStatus = "ingested"
        if prior is not None and prior_attrs is not None:
            same_dir = prior_attrs.get("source_dir") == str(session_dir)
            try:
                same = (same_dir and prior.parent.name == day and _cheap_same(prior_attrs, manifest_sha, plans)) or (
                    _hash_files(manifest_bytes, plans) == prior_attrs.get("content_hash")
                )
            except OSError as exc:  # a frame file vanished or became unreadable since the checks
                name = os.path.relpath(exc.filename, session_dir) if exc.filename else MANIFEST_NAME
                return s.result(sid, day, "rejected", problems=[Problem(name, f"cannot be read ({exc.strerror})")])
            if same:  # a move that a crash interrupted is finished here
                moved = _remove_moved(s, sid, prior, existing) if prior.parent.name == day else ()
                return s.result(sid, prior.parent.name, "unchanged", attrs=prior_attrs, zarr_path=prior, moved_from=moved)
            if not same_dir:
                return s.result(sid, day, "rejected", problems=[Problem(
                    MANIFEST_NAME,
                    f"session_id {sid!r} was already ingested from {prior_attrs.get('source_dir')} with different "
                    f"content (content_hash {prior_attrs.get('content_hash')}); expected a new session_id for new data",
                )])
            status = "rewritten"
            history = list(prior_attrs.get("history") or []) + [{
                "content_hash": prior_attrs.get("content_hash"),
                "ingested_at": prior_attrs.get("ingested_at"),
                "replaced_at": now.isoformat(),
            }]
        return _write(s, manifest, manifest_bytes, manifest_sha, plans, status, history, existing)


def discard_temporary(tmp: Path, attempts: int = 50, pause_s: float = 0.02) -> None:
    """Remove a temporary group for good. A write that failed part-way through zarr's own
    (asynchronous) chunk writes can still have writes in flight that recreate chunk files just
    after a first removal, so remove until the folder stays gone (bounded: ~1 s)."""
    for _ in range(attempts):
        shutil.rmtree(tmp, ignore_errors=True)
        if not tmp.exists():
            time.sleep(pause_s)  # a late write lands here, if any
            if not tmp.exists():
                return
        time.sleep(pause_s)


def _write(s: _Session, manifest: Manifest, manifest_bytes: bytes, manifest_sha: str, plans: list[FramePlan],
           status: IngestStatus, history: list[dict[str, Any]], existing: list[Path]) -> IngestResult:
    tmp = store.new_temp_path(s.paths, manifest.capture_date, manifest.session_id)
    try:
        return _write_group(s, tmp, manifest, manifest_bytes, manifest_sha, plans, status, history, existing)
    except Exception as exc:  # (a kill leaves the temp group to the next run's recovery)
        discard_temporary(tmp)  # nothing half-written stays, and its space is freed
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
            raise storage_error(exc, tmp) from exc
        raise


def _write_group(s: _Session, tmp: Path, manifest: Manifest, manifest_bytes: bytes, manifest_sha: str,
                 plans: list[FramePlan], status: IngestStatus, history: list[dict[str, Any]],
                 existing: list[Path]) -> IngestResult:
    sid, day = manifest.session_id, manifest.capture_date
    sensor = manifest.sensor
    depth = store.frames_per_chunk(len(plans), sensor.height, sensor.width)
    group, arr = store.create_frames_group(tmp, len(plans), sensor.height, sensor.width, depth)
    frames = write_frames(plans, manifest, arr, s.threads)
    if frames.problems:
        discard_temporary(tmp)
        return s.result(sid, day, "rejected", problems=frames.problems)
    records, digests, bytes_in = frames.records, frames.digests, frames.bytes_in

    target = store.group_path(s.paths, day, sid)
    attrs: dict[str, Any] = {
        "session_id": sid,
        "capture_date": day,
        "manifest": manifest.model_dump(mode="json"),
        "manifest_sha256": manifest_sha,
        "frames": records,
        "n_frames": len(records),
        "content_hash": content_hash(manifest_bytes, digests),
        "ingested_at": s.now.isoformat(),
        "source_dir": str(s.session_dir),
        "sensorfleet_version": sensorfleet.__version__,
        "history": history,
        "bytes_in": bytes_in,
        "chunks": list(store.frame_chunks(sensor.height, sensor.width, depth)),
    }
    attrs["bytes_stored"] = store.stored_nbytes(tmp)  # chunks only: the attributes are not yet written
    attrs["complete"] = True  # every chunk is written: the group is whole from this write on
    group.update_attributes(attrs)  # one metadata write, the last (attrs.update would write once per key)
    index.add_day(s.paths, sid, day)  # before the group appears: the index may list a day too many, never too few
    store.publish(tmp, target)
    moved = _remove_moved(s, sid, target, existing)
    return s.result(sid, day, status, attrs=attrs, zarr_path=target, moved_from=moved)


def _remove_moved(s: _Session, sid: str, target: Path, existing: list[Path]) -> tuple[str, ...]:
    """The capture day changed: remove the session's group, maps group and table rows from every
    other day it was ingested into from this folder (the caller holds the session's lock and has
    published ``target``). Rows go first, then the groups, under the old day's tables lock, so no
    table ever lists a group that is gone; a crash in between is finished by the next run."""
    moved: list[str] = []
    for other in existing:
        if other == target or (store.read_group_attrs(other) or {}).get("source_dir") != str(s.session_dir):
            continue
        old_day = other.parent.name
        with file_lock(day_tables_lock_file(s.paths, old_day)):
            for table in session_tables():
                tables.drop_rows(s.paths.tables, table, old_day, "session_id", sid)
            store.retire_maps(s.paths, old_day, sid)
            store.retire(s.paths, other, sid)
        moved.append(old_day)
    index.remove_days(s.paths, sid, moved)
    return tuple(moved)
