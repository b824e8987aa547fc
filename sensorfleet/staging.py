"""Run a command on object-store roots through local staging folders.

:func:`staged` pulls what the command reads from each ``s3://`` root into its staging folder
(:func:`sensorfleet.config.staging_folder`), yields the local :class:`~sensorfleet.config.Paths`
the command runs on, and publishes what it wrote (commit markers last, :mod:`sensorfleet.objstore`)
when it returns or fails with an ordinary error, not when it is interrupted. For local roots it
yields the paths and does nothing else: the local path costs nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorfleet import objstore
from sensorfleet.config import Paths, Roots, object_store_options, staging_folder
from sensorfleet.locks import file_lock, locks_dir
from sensorfleet.objstore import LocationError, ObjectUrl, parse_location

NOT_PUBLISHED = ("dagster_home", "state/locks", "mlflow/artifacts")
"""Under a data root, never synced: the Dagster instance of the staging machine (production
keeps its runs in an instance database), the local file locks, and the model artifacts, which
MLflow writes to the store itself (:func:`sensorfleet.config.resolve_tracking`)."""
PUBLISHED_LAST = ("warehouse.duckdb",)
"""Put after every other object: the warehouse's views read the tables."""


@dataclass(frozen=True)
class Stage:
    """What :func:`staged` exchanges: which parts of the data root to pull (None: all of it),
    whether to pull the landing root, and whether to publish the data root (and, with
    ``publish_landing``, the landing root and the truth beside it, which ``synth`` writes).

    ``shared``: other runs share the store and the staging folder (Dagster runs: concurrent runs
    on one machine, and runs of other days on other machines): each pull and publish holds the
    staging folder's sync lock, and exchanges only what changed on its side (``objstore.pull`` /
    ``objstore.publish`` with ``shared``), so a run never undoes what another published."""

    root_parts: tuple[str, ...] | None = None
    pull_landing: bool = False
    publish_root: bool = True
    publish_landing: bool = False
    shared: bool = False


def _root_exclude(paths: Paths) -> tuple[str, ...]:
    """What the data root's sync leaves alone: :data:`NOT_PUBLISHED`, and a landing root (and
    the truth beside it) nested inside the data root, which has a sync of its own."""
    try:
        nested = paths.landing.relative_to(paths.root).as_posix()
    except ValueError:
        return NOT_PUBLISHED
    truth = paths.truth.relative_to(paths.root).as_posix() if paths.truth.is_relative_to(paths.root) else None
    return NOT_PUBLISHED + (nested,) + ((truth,) if truth else ())


def _check_bucket(fs: Any, url: ObjectUrl, options: dict[str, object]) -> None:
    try:
        found = fs.exists(url.bucket)
    except Exception as exc:  # botocore's errors (endpoint down, bad credentials) are many types
        raise LocationError(f"{url}: the object store did not answer ({type(exc).__name__}: {exc}); "
                            f"endpoint {options.get('endpoint_url', 'AWS')}, see AWS_ENDPOINT_URL") from exc
    if not found:
        raise LocationError(f"{url}: bucket {url.bucket!r} does not exist at "
                            f"{options.get('endpoint_url', 'AWS')}; create it first")


def sync_lock(paths: Paths) -> AbstractContextManager[bool]:
    """The lock a pull of a shared staging folder and every publish of a data root hold (a local
    file lock under ``state/locks``, never published)."""
    return file_lock(locks_dir(paths) / "objstore-sync.lock")


def _pull(fs: Any, roots: Roots, stage: Stage) -> None:
    paths = roots.paths
    if roots.root_url is not None:
        objstore.pull(fs, roots.root_url, paths.root, _root_exclude(paths), include=stage.root_parts,
                      shared=stage.shared)
    if roots.landing_url is not None and stage.pull_landing:
        objstore.pull(fs, roots.landing_url, paths.landing, session_markers=True)


def _publish(fs: Any, roots: Roots, stage: Stage) -> None:
    paths = roots.paths
    if roots.landing_url is not None and stage.publish_landing:
        objstore.publish(fs, paths.landing, roots.landing_url, sessions=True, delete=False)
        objstore.publish(fs, paths.truth, _sibling(roots.landing_url, "truth"), delete=False)
    if roots.root_url is not None and stage.publish_root:
        publish_root(paths, fs, stage.root_parts, shared=stage.shared)


def publish_root(paths: Paths, fs: Any = None, parts: tuple[str, ...] | None = None, shared: bool = True) -> None:
    """Publish the staging folder of an object root (``paths.root_url``) now, ``warehouse.duckdb``
    last; nothing for a local root. The warehouse build calls it first, so the views it creates
    over the store's ``tables/`` bind to the tables of this run: there ``shared`` (what this
    folder changed only, under the sync lock), since other runs may publish meanwhile.
    ``parts``: only those paths of the root (a command that pulled only them must not delete the
    rest). ``shared`` False: the store is made to hold exactly the folder (the end of a CLI
    command, which also clears what a killed writer left)."""
    if paths.root_url is None:
        return
    url = parse_location(paths.root_url, "data root")
    assert isinstance(url, ObjectUrl)
    fs = fs if fs is not None else objstore.filesystem(object_store_options())
    with sync_lock(paths):
        objstore.publish(fs, paths.root, url, _root_exclude(paths), last=PUBLISHED_LAST, include=parts, shared=shared)


def _sibling(url: ObjectUrl, name: str) -> ObjectUrl:
    parent = url.prefix.rsplit("/", 1)[0] if "/" in url.prefix else ""
    return ObjectUrl(url.bucket, f"{parent}/{name}".strip("/"))


@contextmanager
def staged(roots: Roots, stage: Stage) -> Iterator[Paths]:
    """The local paths of ``roots``, pulled before and published after (module doc)."""
    if not roots.staged:
        yield roots.paths
        return
    options = object_store_options()
    fs = objstore.filesystem(options)
    for url in (roots.root_url, roots.landing_url):
        if url is not None:
            _check_bucket(fs, url, options)
    with sync_lock(roots.paths) if stage.shared else nullcontext():
        _pull(fs, roots, stage)
    try:
        yield roots.paths
    except Exception as failure:
        try:  # what finished is published, as a failed local run leaves it (publish_root locks)
            _publish(fs, roots, stage)
        except Exception as publish_failure:
            failure.add_note(f"publishing to {roots.root_url or roots.landing_url} after it failed too: {publish_failure}")
        raise
    _publish(fs, roots, stage)


def register_object_store(con: Any, paths: Paths) -> None:
    """Let DuckDB connection ``con`` read the ``s3://`` URLs of an object root's views, through
    fsspec's s3fs registered in the connection (DuckDB's own ``httpfs`` extension is downloaded
    from the internet on first use, which a production network or an air-gapped build may not
    allow; docs/architecture.md). Does nothing for a local root."""
    if paths.root_url is not None:
        con.register_filesystem(objstore.filesystem(object_store_options()))


SESSION_OBJECTS = ".objects"
"""In each session folder of a :func:`landing_view`: the session's objects in the store."""


def landing_view(url: ObjectUrl, fs: Any = None) -> Path:
    """A local folder holding what the landing sensors read of the ``s3://`` landing ``url``,
    without any frame file: each committed session's ``manifest.json`` and the ``final_test/``
    files (fetched when they change), and in each session folder :data:`SESSION_OBJECTS`, the
    session's objects as JSON ``[[name, size, ETag], ...]``, rewritten only when they change, so
    the fingerprint of a session's folder (size, mtime, ctime, inode of its files) changes iff one
    of its objects does. Sessions gone from the store are removed. The folder,
    ``<staging folder of url>.sensor``, is never the one a run pulls into. Two listings of the
    landing a call."""
    from sensorfleet.ingest.scan import FINAL_TEST_DIR  # heavy package: CLI --help stays light

    fs = fs if fs is not None else objstore.filesystem(object_store_options())
    folder = staging_folder(url)
    folder = folder.with_name(folder.name + ".sensor")
    listing = objstore.remote_listing(fs, url)
    sessions: dict[str, list[list[object]]] = {}
    for relative in sorted(objstore.committed(listing, session_markers=True)):
        top, _, rest = relative.partition("/")
        if rest and top != FINAL_TEST_DIR:
            sessions.setdefault(top, []).append([rest, listing[relative]["size"], listing[relative]["etag"]])
    manifests = [f"{name}/{objstore.SESSION_MARKER}" for name in sessions]
    objstore.pull(fs, url, folder, session_markers=True, include=[*manifests, FINAL_TEST_DIR])
    for stale in (d for d in folder.iterdir() if d.is_dir() and d.name != FINAL_TEST_DIR
                  and not d.name.startswith(".") and d.name not in sessions):
        shutil.rmtree(stale)
    for name, objects in sessions.items():
        record, text = folder / name / SESSION_OBJECTS, json.dumps(objects, separators=(",", ":"))
        if not record.is_file() or record.read_text() != text:
            tmp = record.with_name(record.name + ".tmp")
            tmp.write_text(text)
            tmp.replace(record)
    return folder
