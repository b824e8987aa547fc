"""Which capture days hold a group of a session id: ``<state>/session-index``.

The id-reuse check of ingest needs every ingested group of a ``session_id``, in any day. Looking
in every day folder costs one ``stat`` per day per session (37 ms per session at 1,000 days on
this machine, growing with the fleet's history); the index answers with one small file read.

Layout: ``<state>/session-index/<bucket>/<session_id>.json`` holding ``{"days": [...]}`` (256
buckets by a hash of the id, so no folder grows past a few hundred thousand entries a year), and
``BUILT`` once the index covers every group on disk.

Rules that keep it right without a database:
- Entries are written whole (temp file + ``os.replace``) by the holder of the session's lock.
- A writer adds the day *before* it publishes a group there or puts an old group back (crash
  recovery), and drops a day only after it deleted the group there. A crash in between leaves
  an entry that lists a day too many, never one too few; readers only return complete groups,
  so an extra day costs one ``stat``. Ingest also looks at its own day's path directly, so a
  group written without the index (e.g. by an older release) is found and indexed.
- The index is built once, by the first ingest that finds no ``BUILT`` marker (under a lock of
  its own; the others wait), from a scan of every day folder. Groups copied into the captures
  folder by hand are not in it: delete ``BUILT`` afterwards to rebuild (docs/operations.md).
- Without ``BUILT``, :func:`days_of` falls back to the scan, so it is never wrong, only slower.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from sensorfleet.config import Paths
from sensorfleet.ingest.layout import GROUP_SUFFIX, session_lock
from sensorfleet.locks import file_lock, locks_dir
from sensorfleet.tables import write_atomic

INDEX_DIR = "session-index"
BUILT = "BUILT"


def index_root(paths: Paths) -> Path:
    return paths.state / INDEX_DIR


def _entry(paths: Paths, session_id: str) -> Path:
    bucket = hashlib.sha1(session_id.encode()).hexdigest()[:2]
    return index_root(paths) / bucket / f"{session_id}.json"


def is_built(paths: Paths) -> bool:
    return (index_root(paths) / BUILT).is_file()


def _write_json(path: Path, value: object) -> None:
    write_atomic(path, json.dumps(value).encode())


def _read_days(paths: Paths, session_id: str) -> list[str]:
    try:
        value = json.loads(_entry(paths, session_id).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return _scan_days(paths, session_id)  # an unreadable entry: the truth is on disk
    days = value.get("days") if isinstance(value, dict) else None
    return [d for d in days if isinstance(d, str)] if isinstance(days, list) else _scan_days(paths, session_id)


def _scan_days(paths: Paths, session_id: str) -> list[str]:
    if not paths.captures.is_dir():
        return []
    name = f"{session_id}{GROUP_SUFFIX}"
    return sorted(p.name for p in paths.captures.iterdir() if p.is_dir() and (p / name).exists())


def days_of(paths: Paths, session_id: str) -> list[str]:
    """Capture days that may hold a group of ``session_id`` (a superset: callers check each)."""
    return _read_days(paths, session_id) if is_built(paths) else _scan_days(paths, session_id)


def add_day(paths: Paths, session_id: str, day: str) -> None:
    """Record that ``day`` may hold a group of ``session_id`` (call before publishing it there;
    the caller holds the session's lock)."""
    days = _read_days(paths, session_id)
    if day not in days:
        _write_json(_entry(paths, session_id), {"days": sorted([*days, day])})


def remove_days(paths: Paths, session_id: str, days: list[str]) -> None:
    """Drop ``days`` from the entry (after the caller, holding the session's lock, deleted the
    groups there). Only days known to be empty are dropped, so a group that reappears elsewhere
    (an old group put back by :func:`sensorfleet.ingest.store.recover`) keeps its day."""
    have = _read_days(paths, session_id)
    keep = [d for d in have if d not in days]
    if keep != have:
        _write_json(_entry(paths, session_id), {"days": keep})


def ensure_built(paths: Paths) -> None:
    """Build the index from a scan of the captures folder unless ``BUILT`` exists.

    Call it while holding no session lock: the builder takes each session's lock in turn (via
    :func:`sensorfleet.ingest.layout.session_lock`) so that it never races a writer of the entry.
    """
    if is_built(paths):
        return
    with file_lock(locks_dir(paths) / "session-index.lock"):
        if is_built(paths):  # another process built it while we waited
            return
        found: dict[str, list[str]] = {}
        if paths.captures.is_dir():
            for folder in sorted(p for p in paths.captures.iterdir() if p.is_dir() and not p.name.startswith(".")):
                for group in folder.iterdir():
                    if group.name.endswith(GROUP_SUFFIX) and not group.name.startswith("."):
                        found.setdefault(group.name[: -len(GROUP_SUFFIX)], []).append(folder.name)
        for sid, days in found.items():
            with session_lock(paths, sid):
                for day in days:
                    add_day(paths, sid, day)
        _write_json(index_root(paths) / BUILT, {"built_at": datetime.now(UTC).isoformat(), "sessions": len(found)})
