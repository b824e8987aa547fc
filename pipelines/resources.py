"""The resources of this code location: which storage a deployment or a CLI run uses.

The resource classes belong to the assets layer (``assets/resources.py``); this module only
instantiates them, so the choice of environment is made here and nowhere else in ``pipelines``.
"""

from __future__ import annotations

from assets.resources import STORAGE_KEY, StorageResource
from sensorfleet.config import Paths


def deployment_resources() -> dict[str, StorageResource]:
    """Resources of ``dagster dev`` and the daemon: roots from the environment at run time."""
    return {STORAGE_KEY: StorageResource()}


def run_resources(paths: Paths) -> dict[str, StorageResource]:
    """Resources of one CLI run on the roots of ``paths``."""
    return {STORAGE_KEY: StorageResource.for_paths(paths)}
