"""Object-store roots (``s3://bucket/prefix``): what a URL root is, and how a local staging
folder is kept in step with it.

A root is either a local folder (the default, and the only kind the compute reads and writes
directly: the chunk I/O of ingest and :class:`sensorfleet.ingest.store.FrameReader` stay on
local disk at full speed) or an S3-compatible URL. A command given a URL root works in a local
**staging folder** that mirrors it: :func:`pull` brings down what is committed there, the
command runs unchanged on local paths, and :func:`publish` puts back what changed, with the
commit marker of each multi-object unit last (docs/storage.md, "Object-store roots").

Consistency on an object store, where there is no rename:

- one object (a parquet partition ``part-0.parquet``, ``warehouse.duckdb``, a landing frame
  file) is replaced by one PUT, which S3 makes visible whole or not at all;
- a zarr group (``<session>.zarr/``: many objects) is committed by its root ``zarr.json``,
  uploaded after every other object of the group, and deleted first when the group is
  rewritten or removed; readers (:func:`pull`, and anyone opening the group through zarr) take
  only a group whose root ``zarr.json`` is there, so a writer killed between puts leaves a group
  no reader takes for whole;
- a landing session is committed by its ``manifest.json`` (uploaded after its frames); a
  session folder without one is not pulled;
- hidden names (``.tmp`` folders, ``.<name>.<uuid>.tmp`` files of the local atomic writes) are
  never published.

Credentials and endpoint come from the standard AWS environment variables, read by
:func:`sensorfleet.config.object_store_options`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

SUPPORTED_SCHEMES = ("s3",)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(/*)(.*)$", re.DOTALL)
GROUP_MARKER = "zarr.json"
SESSION_MARKER = "manifest.json"
SYNC_RECORD = ".objstore-sync.json"


class LocationError(ValueError):
    """A root or output given as a URL this command cannot use (unsupported scheme, malformed
    URL, or an object-store URL where only a local folder works)."""


@dataclass(frozen=True)
class ObjectUrl:
    """``s3://bucket/prefix``: a bucket and a key prefix (no leading or trailing ``/``)."""

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def child(self, relative: str) -> ObjectUrl:
        """The URL ``relative`` (a ``/``-separated path) under this one."""
        return ObjectUrl(self.bucket, "/".join(p for p in (self.prefix, relative.strip("/")) if p))

    @property
    def path(self) -> str:
        """``bucket/prefix``: the form fsspec filesystems take."""
        return f"{self.bucket}/{self.prefix}".rstrip("/")


def parse_location(value: str | Path, what: str = "root") -> Path | ObjectUrl:
    """A local folder (``Path``, not resolved) or an :class:`ObjectUrl`.

    ``file://`` URLs are local folders. A ``Path`` made from a URL (``Path("s3://b/x")`` reads
    ``s3:/b/x``) is recognised too, so a URL is never taken for a local folder named ``s3:``.
    Raises :class:`LocationError` naming ``what`` for any other scheme or a URL without bucket.
    """
    text = str(value)
    match = _SCHEME.match(text)
    if match is None or len(match.group(1)) < 2:  # no scheme (a one-letter one is a drive)
        return Path(value)
    scheme, slashes, rest = match.group(1).lower(), match.group(2), match.group(3)
    if scheme == "file":
        return Path("/" + rest.lstrip("/")) if slashes else Path(rest)
    shown = f"{scheme}://{rest}"  # as typed, also when Path() made s3:/ of s3://
    if scheme not in SUPPORTED_SCHEMES:
        raise LocationError(
            f"{what} {shown!r}: unsupported URL scheme {scheme!r}; give a local folder, a file:// URL "
            f"or an S3-compatible URL (s3://bucket/prefix; other stores through an S3-compatible endpoint)"
        )
    bucket, _, prefix = rest.strip("/").partition("/")
    if not bucket or "//" in prefix or slashes not in ("/", "//"):
        raise LocationError(f"{what} {shown!r}: expected s3://bucket/prefix (a bucket name, then a key prefix)")
    return ObjectUrl(bucket, prefix.strip("/"))


def filesystem(options: Mapping[str, Any]) -> Any:
    """An ``s3fs.S3FileSystem`` with ``options`` (endpoint, credentials, region) and no listing
    cache (a publish must see what it just wrote)."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **options)


def _group_root(relative: str) -> str | None:
    """``captures/d/s.zarr`` for ``captures/d/s.zarr/frames/c/0/0/0``; None outside a group."""
    parts = PurePosixPath(relative).parts
    for i, part in enumerate(parts[:-1]):
        if part.endswith(".zarr"):
            return "/".join(parts[: i + 1])
    return None


def unit_marker(relative: str, sessions: bool = False) -> str | None:
    """The commit marker of the unit holding ``relative``: the group's root ``zarr.json`` inside
    a zarr group, with ``sessions`` (a landing root) the session's ``manifest.json`` inside a
    session folder (``final_test/`` files are single objects); None for a single object."""
    group = _group_root(relative)
    if group is not None:
        return f"{group}/{GROUP_MARKER}"
    top = relative.split("/", 1)[0]
    if sessions and "/" in relative and top != "final_test":
        return f"{top}/{SESSION_MARKER}"
    return None


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(relative).parts)


def _under(relative: str, prefixes: Iterable[str]) -> bool:
    return any(relative == p or relative.startswith(p.rstrip("/") + "/") for p in prefixes)


def _excluded(relative: str, exclude: Iterable[str], include: Iterable[str] | None = None) -> bool:
    return _hidden(relative) or _under(relative, exclude) or (include is not None and not _under(relative, include))


def remote_listing(fs: Any, url: ObjectUrl, exclude: Iterable[str] = (),
                   include: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Objects under ``url`` by path relative to it (size, ETag), without excluded or hidden ones
    (and with ``include``, only those at or under one of its paths)."""
    base = url.path + "/"
    found = fs.find(url.path, detail=True) if fs.exists(url.path) else {}
    listing = {}
    for name, info in found.items():
        relative = name[len(base):] if name.startswith(base) else ""
        if relative and info.get("type", "file") == "file" and not _excluded(relative, exclude, include):
            listing[relative] = {"size": int(info.get("size", 0)), "etag": str(info.get("ETag", ""))}
    return listing


def committed(listing: Mapping[str, Any], session_markers: bool = False) -> set[str]:
    """The objects of ``listing`` a reader may take: those outside zarr groups, and those of a
    group whose root ``zarr.json`` is there; with ``session_markers`` (a landing root) only
    ``final_test/`` and session folders holding a ``manifest.json``."""
    return {r for r in listing if (m := unit_marker(r, session_markers)) is None or m in listing}


def local_listing(folder: Path, exclude: Iterable[str] = (),
                  include: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
    """Files under ``folder`` by relative path, as (size, mtime_ns), without excluded or hidden
    ones (temporaries of the local atomic writes)."""
    listing: dict[str, tuple[int, int]] = {}
    if not folder.is_dir():
        return listing
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not _excluded((base / d).relative_to(folder).as_posix(), exclude)]
        for name in filenames:
            relative = (base / name).relative_to(folder).as_posix()
            if not _excluded(relative, exclude, include):
                st = (base / name).stat()
                listing[relative] = (st.st_size, st.st_mtime_ns)
    return listing


def _prune(folder: Path, directory: Path) -> None:
    """Remove ``directory`` and its parents up to ``folder`` while they are empty (a group the
    store withdrew leaves no empty ``<session>.zarr`` folder a reader could list)."""
    while directory != folder and directory.is_relative_to(folder):
        try:
            directory.rmdir()
        except OSError:  # not empty
            return
        directory = directory.parent


class SyncRecord:
    """What the staging folder last exchanged with the store: per relative path the local
    (size, mtime_ns) and the object's ETag, so an unchanged file is neither sent nor fetched."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / SYNC_RECORD
        try:
            self.entries: dict[str, list[Any]] = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            self.entries = {}

    def matches(self, relative: str, local: tuple[int, int] | None, etag: str | None) -> bool:
        entry = self.entries.get(relative)
        return (entry is not None and local is not None and tuple(entry[:2]) == local
                and (etag is None or entry[2] == etag))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.entries, sort_keys=True))
        os.replace(tmp, self.path)


def _changed_here(record: SyncRecord, relative: str, local: Mapping[str, tuple[int, int]]) -> bool:
    """Whether ``relative`` is in the folder and not as the last exchange left it (written here)."""
    return relative in local and not record.matches(relative, local[relative], None)


def pull(fs: Any, url: ObjectUrl, folder: Path, exclude: Iterable[str] = (), session_markers: bool = False,
         include: Iterable[str] | None = None, shared: bool = False) -> int:
    """Make ``folder`` a copy of what is committed under ``url`` (see :func:`committed`): fetch
    new or changed objects, delete local files the store no longer holds (``include``: only
    those paths). ``shared`` (a folder other runs write into and publish from): a file written
    here since the last exchange is kept as it is, neither replaced nor deleted. Returns the
    number of objects fetched."""
    exclude = tuple(exclude)
    include = None if include is None else tuple(include)
    listing = remote_listing(fs, url, exclude, include)
    keep = committed(listing, session_markers)
    local = local_listing(folder, exclude, include)
    record = SyncRecord(folder)
    wanted = sorted(r for r in keep if not record.matches(r, local.get(r), listing[r]["etag"])
                    and not (shared and _changed_here(record, r, local)))
    for relative in set(local) - keep:
        if shared and _changed_here(record, relative, local):
            continue
        (folder / relative).unlink()
        record.entries.pop(relative, None)
        _prune(folder, (folder / relative).parent)
    if wanted:
        for relative in wanted:
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        fs.get([f"{url.path}/{r}" for r in wanted], [str(folder / r) for r in wanted])
    for relative in wanted:
        st = (folder / relative).stat()
        record.entries[relative] = [st.st_size, st.st_mtime_ns, listing[relative]["etag"]]
    record.save()
    return len(wanted)


@dataclass(frozen=True)
class PublishPlan:
    """The steps of one :func:`publish`, in order: markers to withdraw, objects to put, objects
    to delete, markers to put (a group's root ``zarr.json`` after its other objects), and last
    the objects that must follow everything else (``warehouse.duckdb``, whose views read the
    tables)."""

    withdraw: tuple[str, ...]
    put: tuple[str, ...]
    delete: tuple[str, ...]
    markers: tuple[str, ...]
    last: tuple[str, ...]


def plan_publish(local: Mapping[str, tuple[int, int]], remote: Mapping[str, Any], record: SyncRecord,
                 last: Iterable[str] = (), sessions: bool = False, shared: bool = False) -> PublishPlan:
    """What :func:`publish` does to make the store hold ``local``: only changed files are put.
    ``shared`` (other writers publish to the same store): only what changed in the folder since
    the last exchange is put, and only what the folder held then and no longer holds is deleted,
    so an object another writer put meanwhile is neither overwritten nor deleted."""
    if shared:
        changed = {r for r in local if _changed_here(record, r, local)}
        stale = {r for r in set(remote) - set(local) if r in record.entries}
    else:
        changed = {r for r in local if r not in remote or not record.matches(r, local[r], remote[r]["etag"])}
        stale = set(remote) - set(local)
    touched = {m for m in (unit_marker(r, sessions) for r in changed | stale) if m is not None}
    withdraw = sorted(m for m in touched if m in remote)
    # every marker of a touched unit is put again, changed or not: it was withdrawn first
    markers = sorted({m for m in touched if m in local} | {r for r in changed if unit_marker(r, sessions) == r})
    final = sorted(r for r in changed if r in set(last))
    put = sorted(changed - set(markers) - set(final))
    delete = sorted(stale - set(withdraw))
    return PublishPlan(tuple(withdraw), tuple(put), tuple(delete), tuple(markers), tuple(final))


def publish(fs: Any, folder: Path, url: ObjectUrl, exclude: Iterable[str] = (), last: Iterable[str] = (),
            sessions: bool = False, before_step: Callable[[str], None] | None = None,
            include: Iterable[str] | None = None, delete: bool = True, shared: bool = False) -> PublishPlan:
    """Make ``url`` hold the files of ``folder`` (hidden and excluded ones aside), each unit
    committed last (module doc; ``sessions``: a landing root, whose sessions are committed by their
    ``manifest.json``). ``before_step(name)`` runs before each step of the plan (a test
    injects a failure there). ``include``: only those paths (what a partial pull brought down;
    the rest of the store is left alone). ``delete`` False: objects the folder does not hold are
    kept (a landing root: input is never deleted, and a session a station is still uploading has
    no manifest yet, so it was not pulled). ``shared``: see :func:`plan_publish`. Returns the plan
    carried out."""
    exclude = tuple(exclude)
    include = None if include is None else tuple(include)
    record = SyncRecord(folder)
    local = local_listing(folder, exclude, include)
    remote = remote_listing(fs, url, exclude, include)
    if not delete:
        remote = {r: info for r, info in remote.items() if r in local}
    plan = plan_publish(local, remote, record, last, sessions, shared)

    def step(name: str, items: tuple[str, ...], action: Callable[[list[str]], None]) -> None:
        if items:
            if before_step is not None:
                before_step(name)
            action(list(items))

    step("withdraw", plan.withdraw, lambda items: fs.rm([f"{url.path}/{r}" for r in items]))
    step("put", plan.put, lambda items: fs.put([str(folder / r) for r in items], [f"{url.path}/{r}" for r in items]))
    step("delete", plan.delete, lambda items: fs.rm([f"{url.path}/{r}" for r in items]))
    step("markers", plan.markers,
         lambda items: fs.put([str(folder / r) for r in items], [f"{url.path}/{r}" for r in items]))
    step("last", plan.last, lambda items: fs.put([str(folder / r) for r in items], [f"{url.path}/{r}" for r in items]))
    etags = remote_listing(fs, url, exclude, include)
    # shared: a file not put here keeps its record, so a newer object another writer put is fetched
    sent = set(plan.put + plan.markers + plan.last) if shared else set(local)
    record.entries.update({r: [*local[r], etags[r]["etag"]] for r in local if r in etags and r in sent})
    for relative in plan.delete:
        record.entries.pop(relative, None)
    record.save()
    return plan
