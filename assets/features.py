"""Features layer: the point-in-time feature vector of each module characterized on a day.

Thin over :func:`sensorfleet.features.materialize_module_features`; partitioned by capture day
like its sources. Checks warn (they never stop downstream work): features mostly null on the
day, and features whose distribution moved against the previous 7 days (population stability
index).
"""

# No `from __future__ import annotations`: Dagster reads the resource annotation at decoration time.
from collections.abc import Iterator

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)

from assets._common import FEATURES_FAILING, check_spec, frame_md
from assets.characterization import MODULE_CHANNEL_STATS, MODULE_STATS, PIXEL_DEFECTS
from assets.optics import MODULE_OPTICS
from assets.resources import StorageResource
from assets.table_metadata import row_count_metadata, table_spec
from sensorfleet.features import MODULE_FEATURES, feature_quality, materialize_module_features

GROUP = "features"
CODE_VERSION = "1"
"""Version of this layer's code as Dagster sees it: bump it when a change alters what the
step writes, and every day materialized with the old one shows as stale in the UI."""
CHECK_NULL_RATE = "feature_null_rate"
CHECK_DRIFT = "feature_drift_psi"
MAX_NULL_RATE = 0.5
"""A feature null for more than this share of the day's modules is reported."""
MAX_PSI = 0.25
"""PSI above this against the previous 7 days is reported (< 0.1 stable, 0.1-0.25 some shift)."""
MIN_ROWS_FOR_PSI = 20
"""Fewest rows on each side for a PSI worth reading."""


def build_feature_assets(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The ``module_features`` asset and its two warning checks on ``partitions_def``."""

    @multi_asset(
        name="materialize_module_features",
        partitions_def=partitions_def,
        specs=[table_spec(
            MODULE_FEATURES, group=GROUP, code_version=CODE_VERSION, deps=[MODULE_STATS, MODULE_CHANNEL_STATS, PIXEL_DEFECTS, MODULE_OPTICS],
            owner="team:ml-platform",
            description="Table `module_features`: every module characterized on the day with the default "
                        "feature service's values as known at the end of that day (point-in-time).",
        )],
        check_specs=[
            check_spec(CHECK_NULL_RATE, MODULE_FEATURES,
                       f"No feature is null for more than {MAX_NULL_RATE:.0%} of the day's modules.", partitions_def),
            check_spec(CHECK_DRIFT, MODULE_FEATURES,
                       f"No feature's PSI against the previous 7 days exceeds {MAX_PSI}.", partitions_def),
        ],
    )
    def materialize_module_features_step(
        context: AssetExecutionContext, storage: StorageResource
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        paths = storage.paths()
        day = context.partition_key
        written = materialize_module_features(paths, day)
        yield MaterializeResult(asset_key=MODULE_FEATURES, metadata={
            **row_count_metadata(written.rows, partitioned=True),
            "rewritten": MetadataValue.bool(written.rewritten),
            "table": MetadataValue.path(str(written.path)),
        })
        quality = feature_quality(paths, day)
        mostly_null = quality.null_rates.filter(pl.col("null_rate") > MAX_NULL_RATE).sort("null_rate", descending=True)
        yield AssetCheckResult(
            asset_key=MODULE_FEATURES, check_name=CHECK_NULL_RATE, passed=mostly_null.is_empty(),
            severity=AssetCheckSeverity.WARN,
            metadata={"features_over_limit": MetadataValue.int(mostly_null.height),
                      FEATURES_FAILING: MetadataValue.json([f"{f} ({r:.0%} null)" for f, r in
                                                            mostly_null.select("feature", "null_rate").iter_rows()]),
                      "worst": MetadataValue.md(frame_md(mostly_null.select("feature", "null_rate")))},
        )
        readable = quality.psi.filter((pl.col("current_rows") >= MIN_ROWS_FOR_PSI)
                                      & (pl.col("reference_rows") >= MIN_ROWS_FOR_PSI) & pl.col("psi").is_not_null())
        drifted = readable.filter(pl.col("psi") > MAX_PSI).sort("psi", descending=True)
        yield AssetCheckResult(
            asset_key=MODULE_FEATURES, check_name=CHECK_DRIFT, passed=drifted.is_empty(),
            severity=AssetCheckSeverity.WARN,
            metadata={"features_compared": MetadataValue.int(readable.height),
                      "features_drifted": MetadataValue.int(drifted.height),
                      FEATURES_FAILING: MetadataValue.json([f"{f} (PSI {v:.2f})" for f, v in
                                                            drifted.select("feature", "psi").iter_rows()]),
                      "largest_psi": MetadataValue.md(frame_md(readable.sort("psi", descending=True).select("feature", "psi")))},
        )

    return materialize_module_features_step
