"""Feature store over the parquet tables: feature views with two time axes (event time
``captured_at``, created time ``written_at``) and TTLs, feature services, point-in-time training
sets by DuckDB ASOF joins with a manifest for byte-identical rebuilds, an online lookup of the
latest values, and feature-quality functions. Dagster-free; see docs/features.md.
"""

from __future__ import annotations

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

__all__ = [
    "MODULE_FEATURES", "FeatureQuality", "feature_quality", "materialize_module_features",
    "SERVICES", "VIEWS", "FeatureService", "FeatureView", "Selection", "Source", "SourceChangedError",
    "build_training_set", "get_online_features", "get_service", "get_training_set", "get_view",
    "materialize_online", "null_rates", "psi", "psi_previous_days", "rebuild",
]
