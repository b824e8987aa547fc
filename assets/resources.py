"""The resources the assets take as typed parameters (``storage: StorageResource``).

They live in the assets layer so that assets never import ``pipelines``; ``pipelines``
instantiates them for a deployment (``pipelines/resources.py``) or a CLI run. The roots are
resolved by :func:`sensorfleet.config.resolve_roots` (the one place that reads the
environment), so ``dagster dev`` and the ``sensorfleet`` CLI see the same folders.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext

from sensorfleet.config import Paths, Roots, resolve_paths, resolve_roots
from sensorfleet.staging import Stage, landing_view, staged

STORAGE_KEY = "storage"
"""Resource key of :class:`StorageResource`: the name of the assets' and the sensor's
``storage`` parameter, so it cannot change alone."""

RUN_STAGE = Stage(pull_landing=True, shared=True)
"""What a Dagster step on object-store roots exchanges: the whole data root and the landing
pulled before, the data root published after, as a shared staging folder (docs/storage.md)."""


class StorageResource(ConfigurableResource):  # type: ignore[misc]
    """Data root and landing root of one deployment: local folders or ``s3://bucket/prefix`` URLs.

    ``root``/``landing`` left unset fall back to ``SENSORFLEET_ROOT``/``SENSORFLEET_LANDING``
    and then to ``./data`` and ``<root>/landing`` (resolved when a step runs, not at import).
    For a URL root or landing, each step of a run works in the local staging folders
    (:func:`sensorfleet.staging.staged`, :data:`RUN_STAGE`): pulled when the resource is set up
    for the step, published (commit markers last) when it is torn down; the assets see the
    local :meth:`paths` either way. Local roots are used as they are.
    """

    root: str | None = None
    landing: str | None = None
    root_url: str | None = None
    """The ``s3://`` URL the (staging folder) ``root`` mirrors when the staging is done outside
    the resource: a CLI run stages around the whole command and passes the staging folders
    (:meth:`for_paths`), so its steps do not stage again."""

    @classmethod
    def for_paths(cls, paths: Paths) -> StorageResource:
        """The resource pointing at the (already resolved, local or staging) roots of ``paths``."""
        return cls(root=str(paths.root), landing=str(paths.landing), root_url=paths.root_url)

    def roots(self) -> Roots:
        """The roots as given (URLs mapped to their staging folders)."""
        return resolve_roots(self.root, self.landing)

    def watched_landing(self) -> tuple[Path, Path | None]:
        """What the landing sensors scan, with no run and no staging: the landing folder and the
        folder of the scan cache (the data root's ``state/``; None for a local landing of an
        ``s3://`` root). For an ``s3://`` landing, its :func:`~sensorfleet.staging.landing_view`
        (manifests, final-test files and a listing of each session's objects, no frames),
        refreshed by this call, with the cache in its hidden ``.scan`` folder."""
        if self.root_url is not None:
            paths = self.paths()
            return paths.landing, paths.state
        roots = self.roots()
        if roots.landing_url is not None:
            view = landing_view(roots.landing_url)
            return view, view / ".scan"
        return roots.paths.landing, roots.paths.state if roots.root_url is None else None

    def paths(self) -> Paths:
        """Absolute folders (root, landing, tables, captures, maps, state) of this deployment.
        Raises :class:`~sensorfleet.objstore.LocationError` for a URL root outside a run's step
        (a sensor, a schedule): only a step stages."""
        return resolve_paths(self.root, self.landing, root_url=self.root_url)

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[StorageResource]:
        """For a step of a run on URL roots: the resource of the staging folders, pulled before
        the step and published after it (also when the step failed: what finished is kept, as
        on a local root). Otherwise (local roots, a CLI run's staging folders, a sensor's
        evaluation, which has no run) this resource itself, with no staging code entered."""
        roots = None if self.root_url is not None or context.run is None else self.roots()
        if roots is None or not roots.staged:
            yield self
            return
        with staged(roots, RUN_STAGE) as paths:
            yield StorageResource.for_paths(paths)
