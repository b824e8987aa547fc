"""Resources: where the data lives.

The roots are resolved by :func:`sensorfleet.config.resolve_paths` (the one place that reads the
environment), so ``dagster dev`` and the ``sensorfleet`` CLI see the same folders.
"""

from __future__ import annotations

from dagster import ConfigurableResource

from sensorfleet.config import Paths, resolve_paths


class StorageResource(ConfigurableResource):  # type: ignore[misc]
    """Data root and landing root of one deployment.

    ``root``/``landing`` left unset fall back to ``SENSORFLEET_ROOT``/``SENSORFLEET_LANDING``
    and then to ``./data`` and ``<root>/landing`` (resolved when a step runs, not at import).
    """

    root: str | None = None
    landing: str | None = None

    def paths(self) -> Paths:
        """Absolute folders (root, landing, tables, captures, maps, state) of this deployment."""
        return resolve_paths(self.root, self.landing)
