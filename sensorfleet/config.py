"""Storage roots: the one place where the process environment is read.

The CLI and the Dagster resources both resolve their roots through :func:`resolve_paths`, so a
run started from either sees the same folders. A root may also be an object-store URL
(``s3://bucket/prefix``): :func:`resolve_paths` refuses one (a URL is never taken for a local
folder), and the commands that work on object roots call :func:`resolve_roots`, which maps each
URL to a local staging folder (:mod:`sensorfleet.staging`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from sensorfleet.objstore import LocationError, ObjectUrl, parse_location

ROOT_ENV = "SENSORFLEET_ROOT"
LANDING_ENV = "SENSORFLEET_LANDING"
MLFLOW_ENV = "MLFLOW_TRACKING_URI"
STAGING_ENV = "SENSORFLEET_STAGING"
DEFAULT_ROOT = Path("data")
OBJECT_ROOT_COMMANDS = ("synth", "pipeline run", "sql", "features build-training-set", "models")
"""The commands that take ``s3://`` roots (docs/operations.md); every other one refuses them."""


class _Under:
    """A folder of :class:`Paths` at a fixed name under ``root``, documented where declared."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type) -> _Under: ...
    @overload
    def __get__(self, obj: Paths, owner: type) -> Path: ...
    def __get__(self, obj: Paths | None, owner: type) -> Path | _Under:
        return self if obj is None else obj.root / self.name


@dataclass(frozen=True)
class Paths:
    """Folders of one sensorfleet deployment.

    ``root`` holds everything the pipeline writes; ``landing`` holds the raw input (never
    modified). Both are absolute.
    """

    root: Path
    landing: Path
    root_url: str | None = None
    """The object-store URL ``root`` stages (``s3://bucket/prefix``), None for a local root:
    what the warehouse views and the model artifacts name, so they hold on any machine."""

    captures = _Under("captures", "Zarr groups of ingested frame stacks: ``captures/<day>/<session_id>.zarr``.")
    maps = _Under("maps", "Zarr groups of per-pixel maps: ``maps/<day>/<session_id>.zarr``.")
    tables = _Under("tables", "Parquet tables, one folder per table, hive-partitioned by ``capture_date``.")
    state = _Under("state", "Bookkeeping that is not a product (landing scan cache, locks).")
    dagster_home = _Under("dagster_home", "The Dagster instance of this root (sqlite, dagster.yaml).")

    @property
    def truth(self) -> Path:
        """Ground truth of a synthetic fleet (never read by the pipeline)."""
        return self.landing.parent / "truth"

    def location(self, relative: str) -> str:
        """Where ``relative`` (e.g. ``tables``) lives for a reader on any machine: under the
        object-store URL for an object root, else the local path."""
        return f"{self.root_url}/{relative}" if self.root_url else str(self.root / relative)


def _local_only(location: Path | ObjectUrl, what: str) -> Path:
    if isinstance(location, ObjectUrl):
        raise LocationError(
            f"{what} {location} is an object-store URL; this command works on a local folder only "
            f"(object-store roots: {', '.join(f'sensorfleet {c}' for c in OBJECT_ROOT_COMMANDS)})"
        )
    return location.expanduser().resolve()


def local_path(value: str | Path, what: str) -> Path:
    """``value`` as a local path (``file://`` allowed); ``LocationError`` naming ``what`` for a URL."""
    return _local_only(parse_location(value, what), what)


def _given(root: str | Path | None, landing: str | Path | None) -> tuple[Path | ObjectUrl, Path | ObjectUrl | None]:
    """Root and landing as given (argument, else environment), parsed, the landing None when
    it defaults to ``<root>/landing``."""
    root_value = root if root is not None else os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    landing_value = landing if landing is not None else os.environ.get(LANDING_ENV) or None
    return (parse_location(root_value, "data root"),
            None if landing_value is None else parse_location(landing_value, "landing root"))


def resolve_paths(root: str | Path | None = None, landing: str | Path | None = None,
                  root_url: str | None = None) -> Paths:
    """Resolve the data root and landing root, both local folders.

    Precedence: explicit argument, then ``SENSORFLEET_ROOT`` / ``SENSORFLEET_LANDING``, then
    the defaults ``./data`` and ``<root>/landing``. ``file://`` URLs are local folders; any other
    URL raises :class:`~sensorfleet.objstore.LocationError` before anything is created.
    ``root_url``: the object-store URL this (staging) root mirrors, when it mirrors one.
    """
    given_root, given_landing = _given(root, landing)
    root_path = _local_only(given_root, "data root")
    landing_path = root_path / "landing" if given_landing is None else _local_only(given_landing, "landing root")
    return Paths(root=root_path, landing=landing_path, root_url=root_url)


@dataclass(frozen=True)
class Roots:
    """Roots of a command that accepts object-store URLs: the local :class:`Paths` it works in
    (a staging folder for each URL root) and the URLs they mirror (None: a local root)."""

    paths: Paths
    root_url: ObjectUrl | None
    landing_url: ObjectUrl | None

    @property
    def staged(self) -> bool:
        """Whether any root is an object-store URL."""
        return self.root_url is not None or self.landing_url is not None


def staging_folder(url: ObjectUrl) -> Path:
    """The local folder mirroring ``url``: ``$SENSORFLEET_STAGING/<bucket>/<prefix>``, by default
    under ``~/.cache/sensorfleet/staging`` (kept between runs: an unchanged object is not fetched
    again)."""
    base = Path(os.environ.get(STAGING_ENV) or Path.home() / ".cache" / "sensorfleet" / "staging")
    return base.expanduser().resolve() / url.bucket / url.prefix


def staged_url(folder: Path) -> ObjectUrl | None:
    """The object-store URL whose :func:`staging_folder` ``folder`` is, else None (a local root)."""
    base = staging_folder(ObjectUrl("_", "")).parent
    if not folder.is_relative_to(base) or folder == base:
        return None
    bucket, *prefix = folder.relative_to(base).parts
    return ObjectUrl(bucket, "/".join(prefix))


def resolve_roots(root: str | Path | None = None, landing: str | Path | None = None) -> Roots:
    """Like :func:`resolve_paths`, but a root may be an ``s3://bucket/prefix`` URL (mapped to its
    :func:`staging_folder`); other schemes still raise ``LocationError``."""
    given_root, given_landing = _given(root, landing)
    root_url = given_root if isinstance(given_root, ObjectUrl) else None
    if given_landing is None:
        given_landing = root_url.child("landing") if root_url is not None else None
    landing_url = given_landing if isinstance(given_landing, ObjectUrl) else None
    root_path = staging_folder(root_url) if root_url else given_root.expanduser().resolve()  # type: ignore[union-attr]
    if given_landing is None:
        landing_path = root_path / "landing"
    else:
        landing_path = staging_folder(landing_url) if landing_url else given_landing.expanduser().resolve()  # type: ignore[union-attr]
    paths = Paths(root=root_path, landing=landing_path, root_url=str(root_url) if root_url else None)
    return Roots(paths, root_url, landing_url)


def object_store_options() -> dict[str, object]:
    """s3fs options from the standard AWS variables: endpoint (``AWS_ENDPOINT_URL_S3``, else
    ``AWS_ENDPOINT_URL``; unset: AWS itself), ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
    (unset: botocore's own chain: profile, instance role) and ``AWS_DEFAULT_REGION``/``AWS_REGION``."""
    options: dict[str, object] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        options["key"] = os.environ["AWS_ACCESS_KEY_ID"]
        options["secret"] = os.environ["AWS_SECRET_ACCESS_KEY"]
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


@dataclass(frozen=True)
class Tracking:
    """Where model runs and registered versions live: an MLflow tracking URI (which also serves
    the model registry) and the folder for artifacts of experiments created here (None: the
    tracking server's own artifact store)."""

    uri: str
    artifacts: Path | str | None
    """A local folder, an ``s3://`` URL (the staging folder of an object root: MLflow puts the
    artifacts in the store itself), or None."""


def resolve_tracking(root: str | Path | None = None) -> Tracking:
    """MLflow tracking for the data root: ``MLFLOW_TRACKING_URI`` when set, else a SQLite file
    ``<root>/mlflow/mlflow.db``. Artifacts go under ``<root>/mlflow/artifacts`` (for the staging
    folder of an ``s3://`` root: under that URL, written by MLflow's own S3 client) unless the URI
    names a tracking server (``http(s)://``, ``databricks``), whose artifact store then decides."""
    paths = resolve_paths(root)
    folder = paths.root / "mlflow"
    uri = os.environ.get(MLFLOW_ENV) or f"sqlite:///{folder / 'mlflow.db'}"
    served = uri.startswith(("http://", "https://", "databricks"))
    staged = staged_url(paths.root)
    artifacts = f"{staged.child('mlflow/artifacts')}" if staged else folder / "artifacts"
    return Tracking(uri=uri, artifacts=None if served else artifacts)


@contextmanager
def environment_kept(name: str) -> Iterator[None]:
    """Environment variable ``name`` as it was before the block, whatever the block sets (a
    value a run needs for its duration, or one a library exports as a side effect)."""
    before = os.environ.get(name)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
