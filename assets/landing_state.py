"""Fingerprint of a capture day's landing content, shared by the captures step and the sensor.

The captures step records the fingerprint of what it ingested as materialization metadata; the
sensor compares the current fingerprint with it, so a day already materialized (by the CLI or
the UI) with the same landing content is not requested again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable

from sensorfleet.ingest.scan import LandingSession

FINGERPRINT_METADATA_KEY = "landing_fingerprint"


def session_fingerprint(session: LandingSession) -> str:
    """What identifies a session's content for change detection: its folder, id, the manifest's
    sha256, and the (name, size, mtime_ns, ctime_ns, inode) of every file in its folder (one
    ``scandir``): a file rewritten in place with its size and mtime put back still changes its
    ctime, so the sensor requests the day (the ingest then compares content hashes)."""
    files: list[tuple[str, int, int, int, int]] = []
    try:
        with os.scandir(session.session_dir) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    files.append((entry.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    except OSError:
        pass  # vanished or unreadable: the ingest step reports it
    files.sort()
    return json.dumps(
        [session.session_dir.name, session.session_id, session.manifest_sha256, session.error, files],
        separators=(",", ":"),
    )


def day_fingerprints(sessions: Iterable[LandingSession]) -> dict[str, str]:
    """``{capture day: sha256 hex over its sessions' fingerprints}``; changes iff a session of
    the day was added, removed or changed (manifest or any file's size, mtime, ctime or inode)."""
    per_day: dict[str, list[str]] = defaultdict(list)
    for session in sessions:
        per_day[session.capture_date].append(session_fingerprint(session))
    return {
        day: hashlib.sha256("\n".join(sorted(prints)).encode()).hexdigest()
        for day, prints in sorted(per_day.items())
    }
