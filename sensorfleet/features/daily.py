"""The materialized feature table ``module_features``: for each capture day, every module
characterized that day with the default service's features as of the end of that day
(point-in-time, from :func:`get_training_set`), and the feature-quality measures the daily checks
read (null rate per feature, PSI against the previous 7 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from sensorfleet.config import Paths
from sensorfleet.features.catalog import get_service
from sensorfleet.features.quality import float_columns, null_rates, psi_of_values
from sensorfleet.features.retrieval import get_training_set
from sensorfleet.registry import Column, Table, register
from sensorfleet.tables import PartitionWrite, publish_partition, read_partition

MODULE_FEATURES = "module_features"
SERVICE = "default"
PSI_DAYS = 7


def _table() -> Table:
    service = get_service(SERVICE)
    features = tuple(
        Column(f"{s.view.name}__{c.name}", c.dtype, f"{c.description} (view {s.view.name} v{s.view.version})",
               c.unit, c.symbol, c.section, c.bound, feature=True)
        for s in service.selections for c in s.columns()
    )
    return Table(
        name=MODULE_FEATURES,
        description=f"Point-in-time feature vector (service `{SERVICE}`) of every module characterized that day, "
                    "as known at the end of the day: what a model scoring the day would have seen.",
        grain="one row per module and capture day",
        produced_by="features (asset `module_features`)",
        key=("module_id",),
        event_time="feature_time",
        columns=(
            Column("module_id", "str", "camera module serial"),
            Column("feature_time", "ts", "event time: the end of the capture day the features are taken at, UTC"),
            *features,
            Column("written_at", "ts", "created time: when this row's content became known, UTC"),
        ),
    )


MODULE_FEATURES_TABLE = register(_table())


def day_end(day: str) -> datetime:
    """The last microsecond of UTC ``day`` (a spine time that sees everything captured that day)."""
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time(), UTC) - timedelta(microseconds=1)


def materialize_module_features(paths: Paths, day: str, now: datetime | None = None) -> PartitionWrite:
    """Write the ``day`` partition of ``module_features`` (rows whose content is unchanged keep
    their ``written_at``; an unchanged partition is not rewritten)."""
    stats = read_partition(paths.tables, "module_stats", day)
    modules = sorted(set(stats["module_id"].to_list())) if "module_id" in stats.columns else []
    spine = pl.DataFrame({"module_id": modules, "label_time": [day_end(day)] * len(modules)},
                         schema={"module_id": pl.String, "label_time": pl.Datetime("us", "UTC")})
    features = get_training_set(spine, SERVICE, root=paths.root) if modules else spine
    rows = features.rename({"label_time": "feature_time"}).with_columns(
        written_at=pl.lit(now or datetime.now(UTC), dtype=pl.Datetime("us", "UTC")))
    if not modules:
        rows = MODULE_FEATURES_TABLE.empty()
    return publish_partition(paths.tables, MODULE_FEATURES, day, rows)


@dataclass(frozen=True)
class FeatureQuality:
    """Quality of one day's feature rows: ``null_rates`` (feature, rows, nulls, null_rate) and
    ``psi`` (feature, psi, current_rows, reference_rows) against the previous ``PSI_DAYS`` days
    (null where a side has no value)."""

    null_rates: pl.DataFrame
    psi: pl.DataFrame


def feature_quality(paths: Paths, day: str) -> FeatureQuality:
    """Null rates of the day's ``module_features`` and each numeric feature's PSI against the
    previous ``PSI_DAYS`` days' partitions."""
    current = read_partition(paths.tables, MODULE_FEATURES, day)
    columns = [c.name for c in MODULE_FEATURES_TABLE.features]
    present = [c for c in columns if c in current.columns]
    first = date.fromisoformat(day)
    previous = [read_partition(paths.tables, MODULE_FEATURES, str(first - timedelta(days=k))) for k in range(1, PSI_DAYS + 1)]
    reference = pl.concat([p for p in previous if p.height], how="diagonal_relaxed") if any(p.height for p in previous) else None
    types = current.schema  # built anew on each access
    numeric = [name for name in present if types[name].is_numeric()]
    cur = float_columns(current, numeric)  # one conversion per frame, not one per feature
    ref = float_columns(reference, numeric) if reference is not None else np.empty((0, len(numeric)))
    ref_columns = set(reference.columns) if reference is not None else set()
    rows = [{"feature": name, "psi": psi_of_values(cur[:, k], ref[:, k]), "current_rows": current.height,
             "reference_rows": ref.shape[0] if name in ref_columns else 0}
            for k, name in enumerate(numeric)]
    schema = {"feature": pl.String, "psi": pl.Float64, "current_rows": pl.Int64, "reference_rows": pl.Int64}
    return FeatureQuality(null_rates(current, present), pl.DataFrame(rows, schema=schema))
