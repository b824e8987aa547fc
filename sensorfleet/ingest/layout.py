"""Where the ingest keeps things under a data root: the path conventions that the zarr store
(:mod:`sensorfleet.ingest.store`) and the session index (:mod:`sensorfleet.ingest.index`) share.

- ``<captures>/<day>/<session_id>.zarr``: a published session group;
- ``<captures>/<day>/.tmp/<session_id>-<uuid hex>.zarr`` (``.old.zarr`` when set aside by a
  rewrite): groups being written or retired, never read;
- ``<state>/locks/ingest-<bucket>.lock``: the lock that writers of a session hold.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sensorfleet.config import Paths
from sensorfleet.locks import file_lock, locks_dir

TMP_DIR = ".tmp"
GROUP_SUFFIX = ".zarr"
OLD_SUFFIX = ".old.zarr"
LOCK_BUCKETS = 256


def day_dir(paths: Paths, day: str) -> Path:
    return paths.captures / day


def group_path(paths: Paths, day: str, session_id: str) -> Path:
    """Published location of a session's group."""
    return day_dir(paths, day) / f"{session_id}{GROUP_SUFFIX}"


def temp_dir(paths: Paths, day: str) -> Path:
    return day_dir(paths, day) / TMP_DIR


def new_temp_path(paths: Paths, day: str, session_id: str, old: bool = False) -> Path:
    return temp_dir(paths, day) / f"{session_id}-{uuid.uuid4().hex}{OLD_SUFFIX if old else GROUP_SUFFIX}"


def temp_owner(name: str) -> tuple[str, bool] | None:
    """(session_id, is_old_aside) of a temp entry name, or None if it is not ours."""
    old = name.endswith(OLD_SUFFIX)
    stem = name[: -len(OLD_SUFFIX)] if old else name[: -len(GROUP_SUFFIX)] if name.endswith(GROUP_SUFFIX) else None
    if stem is None or "-" not in stem:
        return None
    sid, hex_part = stem.rsplit("-", 1)  # uuid hex has no '-', so the split is unambiguous
    if len(hex_part) != 32:
        return None
    return sid, old


def session_lock_file(paths: Paths, session_id: str) -> Path:
    """Bucketed by a hash of the id, so the number of lock files stays bounded."""
    bucket = int.from_bytes(hashlib.sha1(session_id.encode()).digest()[:4], "big") % LOCK_BUCKETS
    return locks_dir(paths) / f"ingest-{bucket:03d}.lock"


@contextmanager
def session_lock(paths: Paths, session_id: str, blocking: bool = True) -> Iterator[bool]:
    """Exclusive lock for writing ``session_id``; yields False when ``blocking`` is False and
    another process holds it."""
    with file_lock(session_lock_file(paths, session_id), blocking) as held:
        yield held
