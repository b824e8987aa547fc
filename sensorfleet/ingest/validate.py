"""Checks that need no pixel data: manifest, folder name, operating points, frame paths and sizes.

Each problem becomes one :class:`Rejection` naming the file, what was expected and what was
found, so a person can fix the session without reading code. All cheap problems of a session are
collected, not only the first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from io import FileIO
from pathlib import Path, PurePosixPath, PureWindowsPath

from sensorfleet.manifest import MANIFEST_NAME, Manifest
from sensorfleet.rawio import expected_nbytes


@dataclass(frozen=True)
class Rejection:
    """One problem that stops a session from being ingested.

    ``file`` is relative to the session folder (``manifest.json`` for session-level problems);
    ``reason`` says what was expected and what was found.
    """

    session_id: str | None
    session_dir: str
    file: str
    reason: str
    rejected_at: datetime

    @property
    def label(self) -> str:
        """What to call the session in a report: its id, or its folder's name when the manifest
        could not be read (there is no id then)."""
        return self.session_id if self.session_id is not None else Path(self.session_dir).name


@dataclass(frozen=True)
class FramePlan:
    """A frame file that passed the cheap checks: where it is and how big it was when checked."""

    index: int
    file: str
    path: Path
    size_bytes: int
    mtime_ns: int
    op_index: int
    ctime_ns: int = 0
    inode: int = 0


@dataclass(frozen=True)
class Problem:
    """A rejection before it gets its session and time stamp."""

    file: str
    reason: str


@contextmanager
def open_regular(path: Path) -> Iterator[FileIO]:
    """Open ``path`` for unbuffered reading without blocking (``O_NONBLOCK``: a FIFO swapped in
    after the checks never hangs the reader) and refuse anything but a regular file (``OSError``
    EINVAL naming it)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(22, "not a regular file; expected a frame file", str(path))
    except BaseException:
        os.close(fd)
        raise
    with FileIO(fd, "rb", closefd=True) as f:
        yield f


def _frame_path(session_real: Path, session_dir: Path, file: str) -> tuple[Path | None, str | None]:
    """Resolve a manifest ``file`` entry inside the session folder, or say why it is refused."""
    if PurePosixPath(file).is_absolute() or PureWindowsPath(file).is_absolute() or PureWindowsPath(file).drive:
        return None, "absolute path; expected a path relative to the session folder"
    parts = PurePosixPath(file.replace("\\", "/")).parts
    if ".." in parts:
        return None, "path leaves the session folder ('..'); expected a path inside it"
    candidate = session_dir / file
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        if candidate.is_symlink():
            return None, f"symlink to a missing target ({os.readlink(candidate)}); expected a frame file in the session folder"
        return None, "frame file is missing; expected it in the session folder"
    except (OSError, RuntimeError) as exc:  # symlink loops raise RuntimeError/OSError
        return None, f"cannot be resolved ({exc})"
    if not real.is_relative_to(session_real):
        return None, f"resolves outside the session folder (to {real}); expected a file inside {session_real}"
    if not real.is_file():
        return None, "not a regular file; expected a frame file"
    return real, None


def _plain_file(session_real: Path, file: str) -> tuple[Path, None] | None:
    """``(session_real / file, None)`` when ``file`` is a plain name (no folder part or drive,
    not ``.`` or ``..``) of a regular file that is not a symlink: one ``lstat`` settles what
    :func:`_frame_path` resolves component by component (~4x the system calls for a 302-frame
    session). None: anything else, left to :func:`_frame_path`."""
    if not file or any(c in file for c in "/\\:") or file in (".", ".."):  # ":": a Windows drive
        return None
    path = session_real / file
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            return path, None
    except (OSError, ValueError):  # ValueError: a NUL in the name
        pass
    return None


def check_session(session_dir: Path, manifest: Manifest) -> tuple[list[FramePlan], list[Problem]]:
    """Cheap checks of a parsed manifest against its folder; returns the frame plans and problems.

    Checks: ``session_id`` equals the folder name; every operating point has >= 2 frames; each
    frame path stays inside the folder, exists, is listed once, and (for the raw formats) has the
    exact byte size of a ``width x height`` frame.
    """
    problems: list[Problem] = []
    if manifest.session_id != session_dir.name:
        problems.append(Problem(
            MANIFEST_NAME,
            f"session_id {manifest.session_id!r} does not match the folder name; expected {session_dir.name!r} "
            "(rename the folder or fix session_id)",
        ))
    points = manifest.operating_points()
    op_of: dict[int, int] = {}
    for op_index, ((kind, exposure_s, photons), idxs) in enumerate(points.items()):
        for i in idxs:
            op_of[i] = op_index
        if len(idxs) < 2:
            problems.append(Problem(
                MANIFEST_NAME,
                f"operating point (kind={kind}, exposure_s={exposure_s}, photons_per_pixel={photons}) has "
                f"{len(idxs)} frame ({manifest.frames[idxs[0]].file}); expected at least 2 for temporal noise",
            ))
    sensor = manifest.sensor
    expected = expected_nbytes(manifest.pixel_format, sensor.width, sensor.height)
    session_real = session_dir.resolve()
    plans: list[FramePlan] = []
    seen: dict[Path, str] = {}
    for index, entry in manifest.iter_frames():
        fast = _plain_file(session_real, entry.file)
        path, reason = fast if fast is not None else _frame_path(session_real, session_dir, entry.file)
        if path is None:
            problems.append(Problem(entry.file, reason or "unknown problem"))
            continue
        if path in seen:
            problems.append(Problem(entry.file, f"frame {index} is the same file as {seen[path]!r}; expected each frame in its own file"))
            continue
        seen[path] = entry.file
        try:
            st = path.stat()
        except OSError as exc:
            problems.append(Problem(entry.file, f"cannot be read ({exc.strerror})"))
            continue
        if expected is not None and st.st_size != expected:
            problems.append(Problem(
                entry.file,
                f"wrong size for {manifest.pixel_format} {sensor.width}x{sensor.height}: expected {expected} bytes, found {st.st_size}",
            ))
            continue
        plans.append(FramePlan(index, entry.file, path, st.st_size, st.st_mtime_ns, op_of[index], st.st_ctime_ns, st.st_ino))
    return plans, problems
