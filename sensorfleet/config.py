"""Storage roots: the one place where the process environment is read.

The CLI and the Dagster resources both resolve their roots through :func:`resolve_paths`, so a
run started from either sees the same folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import overload

ROOT_ENV = "SENSORFLEET_ROOT"
LANDING_ENV = "SENSORFLEET_LANDING"
MLFLOW_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_ROOT = Path("data")


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

    captures = _Under("captures", "Zarr groups of ingested frame stacks: ``captures/<day>/<session_id>.zarr``.")
    maps = _Under("maps", "Zarr groups of per-pixel maps: ``maps/<day>/<session_id>.zarr``.")
    tables = _Under("tables", "Parquet tables, one folder per table, hive-partitioned by ``capture_date``.")
    state = _Under("state", "Bookkeeping that is not a product (landing scan cache, locks).")
    dagster_home = _Under("dagster_home", "The Dagster instance of this root (sqlite, dagster.yaml).")

    @property
    def truth(self) -> Path:
        """Ground truth of a synthetic fleet (never read by the pipeline)."""
        return self.landing.parent / "truth"


def resolve_paths(root: str | Path | None = None, landing: str | Path | None = None) -> Paths:
    """Resolve the data root and landing root.

    Precedence: explicit argument, then ``SENSORFLEET_ROOT`` / ``SENSORFLEET_LANDING``, then
    the defaults ``./data`` and ``<root>/landing``.
    """
    root_path = Path(root) if root is not None else Path(os.environ.get(ROOT_ENV, DEFAULT_ROOT))
    root_path = root_path.expanduser().resolve()
    if landing is not None:
        landing_path = Path(landing)
    elif os.environ.get(LANDING_ENV):
        landing_path = Path(os.environ[LANDING_ENV])
    else:
        landing_path = root_path / "landing"
    return Paths(root=root_path, landing=landing_path.expanduser().resolve())


@dataclass(frozen=True)
class Tracking:
    """Where model runs and registered versions live: an MLflow tracking URI (which also serves
    the model registry) and the folder for artifacts of experiments created here (None: the
    tracking server's own artifact store)."""

    uri: str
    artifacts: Path | None


def resolve_tracking(root: str | Path | None = None) -> Tracking:
    """MLflow tracking for the data root: ``MLFLOW_TRACKING_URI`` when set, else a SQLite file
    ``<root>/mlflow/mlflow.db``. Artifacts go under ``<root>/mlflow/artifacts`` unless the URI
    names a tracking server (``http(s)://``, ``databricks``), whose artifact store then decides."""
    paths = resolve_paths(root)
    folder = paths.root / "mlflow"
    uri = os.environ.get(MLFLOW_ENV) or f"sqlite:///{folder / 'mlflow.db'}"
    served = uri.startswith(("http://", "https://", "databricks"))
    return Tracking(uri=uri, artifacts=None if served else folder / "artifacts")
