"""Cheap scan of the landing root: which sessions exist and which capture day each belongs to.

A scan stats every ``<landing>/<folder>/manifest.json`` and parses only the manifests it has not
seen with the same (path, size, mtime_ns, ctime_ns, inode); the parsed summary is cached in
``cache_dir`` so that rescanning 100,000 sessions costs one ``stat`` each. The scan never writes
under the landing root, and nothing a folder holds makes it fail: a manifest that cannot be read
or parsed gives a record with ``error`` set (reads are bounded: regular files only, without
blocking, at most ``MANIFEST_MAX_BYTES``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sensorfleet.capture_days import filing_day, today_utc
from sensorfleet.manifest import MANIFEST_NAME, ManifestError, parse_manifest, read_manifest_bytes
from sensorfleet.tables import write_atomic

FINAL_TEST_DIR = "final_test"
CACHE_NAME = "landing-scan-v2.json"  # v2: entries keyed by size, mtime, ctime and inode


@dataclass(frozen=True)
class LandingSession:
    """One folder under the landing root, as seen by a cheap scan.

    ``capture_date`` is the day the session is filed under: the UTC day (``YYYY-MM-DD``) of the
    manifest's ``captured_at``; for a manifest that cannot be parsed the UTC day of the manifest's
    modification time (of the folder's when the manifest is missing); and when that day has no
    partition (:func:`sensorfleet.capture_days.in_partitions`), today, so the rejection still
    lands in a partition an engineer looks at.
    """

    session_dir: Path
    session_id: str | None
    capture_date: str
    manifest_sha256: str | None
    error: str | None


def mtime_day(path: Path) -> str:
    """UTC calendar day of ``path``'s own modification time (a symlink's, not its target's: a
    link to a device says nothing about the session); today when it cannot be stat'ed (the
    folder vanished meanwhile)."""
    try:
        return datetime.fromtimestamp(path.lstat().st_mtime, tz=UTC).strftime("%Y-%m-%d")
    except (OSError, OverflowError, ValueError):
        return today_utc()


def summarize_manifest(session_dir: Path, data: bytes) -> LandingSession:
    """Build the scan record of a session from its manifest bytes (parsed, not cached)."""
    sha = hashlib.sha256(data).hexdigest()
    manifest_path = session_dir / MANIFEST_NAME
    try:
        manifest = parse_manifest(data, manifest_path)
    except ManifestError as exc:
        return LandingSession(session_dir, None, mtime_day(manifest_path), sha, exc.reason)
    return LandingSession(session_dir, manifest.session_id, manifest.capture_date, sha, None)


def _stat_key(st: os.stat_result) -> list[int]:
    """What must stay equal for a cached parse to be reused: size, mtime, ctime and inode (a
    rewrite with its mtime put back still moves the ctime)."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _scan_one(session_dir: Path, cache: dict[str, list[object]], seen: dict[str, list[object]]) -> LandingSession:
    manifest_path = session_dir / MANIFEST_NAME
    try:
        st = manifest_path.stat()
    except FileNotFoundError:
        return LandingSession(session_dir, None, mtime_day(session_dir), None, f"{MANIFEST_NAME} is missing")
    except OSError as exc:
        return LandingSession(session_dir, None, mtime_day(session_dir), None, f"{MANIFEST_NAME} cannot be read ({exc.strerror})")
    key = str(manifest_path)
    entry = cache.get(key)
    if entry is not None and entry[0] == _stat_key(st):
        _, sid, day, sha, err = entry
        seen[key] = entry
        return LandingSession(session_dir, sid, day, sha, err)  # type: ignore[arg-type]
    try:
        data = read_manifest_bytes(manifest_path)
    except ManifestError as exc:
        return LandingSession(session_dir, None, mtime_day(session_dir), None, exc.reason)
    rec = summarize_manifest(session_dir, data)
    if len(data) == st.st_size:  # not rewritten while we read it
        seen[key] = [_stat_key(st), rec.session_id, rec.capture_date, rec.manifest_sha256, rec.error]
    return rec


def _scan_guarded(session_dir: Path, cache: dict[str, list[object]], seen: dict[str, list[object]]) -> LandingSession:
    """:func:`_scan_one` filed under a day with a partition; whatever the folder holds, a record."""
    try:
        rec = _scan_one(session_dir, cache, seen)
    except Exception as exc:  # the boundary: one folder never fails the scan (or the sensor)
        return LandingSession(session_dir, None, mtime_day(session_dir), None,
                              f"{MANIFEST_NAME} could not be scanned ({type(exc).__name__}: {str(exc)[:200]})")
    day = filing_day(rec.capture_date)
    return rec if day == rec.capture_date else LandingSession(rec.session_dir, rec.session_id, day, rec.manifest_sha256, rec.error)


def _load_cache(path: Path) -> dict[str, list[object]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(path: Path, cache: dict[str, list[object]]) -> None:
    write_atomic(path, json.dumps(cache, separators=(",", ":")).encode())


def scan_landing(landing: Path, cache_dir: Path | None = None) -> list[LandingSession]:
    """Every session folder under ``landing`` (sorted by folder name), skipping ``final_test``
    and hidden folders. With ``cache_dir``, parsed manifests are cached there keyed by
    (path, size, mtime_ns, ctime_ns, inode); the cache is rewritten atomically and only when it
    changed (a cache that cannot be written, e.g. on a full disk, is skipped: the next scan parses
    again)."""
    landing = Path(landing)
    if not landing.is_dir():
        return []
    cache_path = Path(cache_dir) / CACHE_NAME if cache_dir is not None else None
    cache = _load_cache(cache_path) if cache_path is not None else {}
    seen: dict[str, list[object]] = {}
    out = []
    with os.scandir(landing) as it:
        entries = sorted((e for e in it if e.is_dir(follow_symlinks=False)), key=lambda e: e.name)
    for entry in entries:
        if entry.name == FINAL_TEST_DIR or entry.name.startswith("."):
            continue
        out.append(_scan_guarded(Path(entry.path), cache, seen))
    if cache_path is not None and seen != cache:
        try:
            _save_cache(cache_path, seen)
        except OSError:
            pass  # only a cache: a scan must not fail because the data root is full or read-only
    return out


def sessions_for_day(landing: Path, day: str, cache_dir: Path | None = None) -> list[LandingSession]:
    """The landing sessions whose capture day is ``day`` (``YYYY-MM-DD``)."""
    return [s for s in scan_landing(landing, cache_dir) if s.capture_date == day]
