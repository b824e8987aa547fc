"""Feature store over the parquet tables: feature views with two time axes (event time
``captured_at``, created time ``written_at``) and TTLs, feature services, point-in-time training
sets by DuckDB ASOF joins with a manifest for byte-identical rebuilds, an online lookup of the
latest values, and feature-quality functions. Dagster-free; see docs/features.md.

Names are imported on first use (``sensorfleet.lazy_exports``), so a command of this package
starts without loading all of it.
"""

# ruff: noqa: F401  (the TYPE_CHECKING imports name the lazy exports for type checkers)
from __future__ import annotations

from typing import TYPE_CHECKING

from sensorfleet.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "catalog": ["SERVICES", "VIEWS", "get_service", "get_view"],
    "daily": ["MODULE_FEATURES", "FeatureQuality", "feature_quality", "materialize_module_features"],
    "manifest": ["SourceChangedError", "build_training_set", "rebuild"],
    "model": ["FeatureService", "FeatureView", "Selection", "Source"],
    "online": ["get_online_features", "materialize_online"],
    "quality": ["null_rates", "psi", "psi_previous_days"],
    "retrieval": ["get_training_set"],
})

if TYPE_CHECKING:
    from sensorfleet.features.catalog import SERVICES, VIEWS, get_service, get_view
    from sensorfleet.features.daily import (
        MODULE_FEATURES,
        FeatureQuality,
        feature_quality,
        materialize_module_features,
    )
    from sensorfleet.features.manifest import SourceChangedError, build_training_set, rebuild
    from sensorfleet.features.model import FeatureService, FeatureView, Selection, Source
    from sensorfleet.features.online import get_online_features, materialize_online
    from sensorfleet.features.quality import null_rates, psi, psi_previous_days
    from sensorfleet.features.retrieval import get_training_set
