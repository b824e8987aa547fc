"""The resources the assets take as typed parameters (``storage: StorageResource``).

They live in the assets layer so that assets never import ``pipelines``; ``pipelines``
instantiates them for a deployment (``pipelines/resources.py``) or a CLI run. The roots are
resolved by :func:`sensorfleet.config.resolve_paths` (the one place that reads the
environment), so ``dagster dev`` and the ``sensorfleet`` CLI see the same folders.
"""

from __future__ import annotations

from dagster import ConfigurableResource

from sensorfleet.config import Paths, resolve_paths

STORAGE_KEY = "storage"
"""Resource key of :class:`StorageResource`: the name of the assets' and the sensor's
``storage`` parameter, so it cannot change alone."""


class StorageResource(ConfigurableResource):  # type: ignore[misc]
    """Data root and landing root of one deployment.

    ``root``/``landing`` left unset fall back to ``SENSORFLEET_ROOT``/``SENSORFLEET_LANDING``
    and then to ``./data`` and ``<root>/landing`` (resolved when a step runs, not at import).
    """

    root: str | None = None
    landing: str | None = None
    root_url: str | None = None
    """The ``s3://`` URL a CLI run's (staging) ``root`` mirrors; ``root`` itself is always local
    (a URL there is refused: the UI's runs work on local roots)."""

    @classmethod
    def for_paths(cls, paths: Paths) -> StorageResource:
        """The resource pointing at the (already resolved) roots of ``paths``."""
        return cls(root=str(paths.root), landing=str(paths.landing), root_url=paths.root_url)

    def paths(self) -> Paths:
        """Absolute folders (root, landing, tables, captures, maps, state) of this deployment."""
        return resolve_paths(self.root, self.landing, root_url=self.root_url)
