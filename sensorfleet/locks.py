"""Advisory file locks under ``<root>/state/locks`` (``flock``): how writers of the same data
serialize across processes without a database.

``flock`` locks belong to an open file description, so two ``open`` calls conflict even inside
one process; the kernel drops a lock when its holder dies, so a crash never leaves one behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sensorfleet.config import Paths


def locks_dir(paths: Paths) -> Path:
    """Lock files of every writer under the data root."""
    return paths.state / "locks"


def day_run_lock_file(paths: Paths, day: str) -> Path:
    """The lock a whole run of capture ``day`` holds when it is started from the CLI
    (``pipelines.runner``), so two of them never interleave their steps."""
    return locks_dir(paths) / f"run-{day}.lock"


def day_tables_lock_file(paths: Paths, day: str) -> Path:
    """The lock held while the table partitions of capture ``day`` are rebuilt from its groups,
    or while a session moving away from ``day`` removes its group, maps and rows, so that no
    table is written from a list of groups that changed meanwhile."""
    return locks_dir(paths) / f"tables-{day}.lock"


@contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created with its folder if missing) for the block.

    Yields True once held; with ``blocking=False`` yields False at once when another holder has
    it (the block then runs without the lock, and the caller decides what to do).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
