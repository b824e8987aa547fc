"""Score tables: ``anomaly_scores`` and ``yield_predictions`` (declared in the registry,
``sensorfleet/registry/score_tables.py``, partitioned by capture day), the functions that score one day's modules with a registered model version and
publish the partition, and the per-lot yield forecast beside the actual yield.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import polars as pl

from models.anomaly import AnomalyModel
from models.data import first_tests, matrix
from models.tracking import CHAMPION, load_model, resolve_version
from models.train import ANOMALY_MODEL, YIELD_MODEL
from models.yield_model import YieldModel
from sensorfleet.config import Paths
from sensorfleet.features import MODULE_FEATURES
from sensorfleet.registry import ANOMALY_SCORES, YIELD_PREDICTIONS, Table
from sensorfleet.tables import PartitionWrite, publish_partition, read_partition, read_table


def day_sessions(paths: Paths, day: str) -> pl.DataFrame:
    """Each module's latest characterized session of the day (``module_id``, ``session_id``,
    ``captured_at``, ``lot_id`` from ``module_stats``), by module; empty when the day has none."""
    stats = read_partition(paths.tables, "module_stats", day)
    if stats.is_empty():
        return pl.DataFrame()
    return (stats.sort("module_id", "captured_at").group_by("module_id", maintain_order=True).last()
            .select("module_id", "session_id", "captured_at", "lot_id"))


def day_modules(paths: Paths, day: str) -> pl.DataFrame:
    """The day's ``module_features`` rows joined to each module's latest session of the day
    (``session_id``, ``captured_at``, ``lot_id``); empty when the day has none."""
    features = read_partition(paths.tables, MODULE_FEATURES, day)
    sessions = day_sessions(paths, day)
    if features.is_empty() or sessions.is_empty():
        return pl.DataFrame()
    return features.join(sessions, on="module_id", how="inner").sort("module_id")


def publish_scores(paths: Paths, table: Table, day: str, rows: pl.DataFrame) -> PartitionWrite:
    """Publish the day's partition of a score table (an empty one, with the table's schema, when
    the day has no rows)."""
    return publish_partition(paths.tables, table.name, day, rows if rows.height else table.empty())


def anomaly_rows(frame: pl.DataFrame, model: AnomalyModel, version: str, now: datetime) -> pl.DataFrame:
    """Score rows for ``frame`` (module_id, session_id, captured_at and feature columns)."""
    x = matrix(frame, model.feature_names)
    log_exceedance = model.log_exceedance(x)
    score = -np.expm1(log_exceedance)
    rank = np.empty(len(score), dtype=np.int64)
    rank[np.argsort(log_exceedance, kind="stable")] = np.arange(1, len(score) + 1)
    return frame.select("module_id", "session_id", "captured_at").with_columns(
        score=pl.Series(score), rank=pl.Series(rank), is_alarm=pl.Series(score > model.threshold),
        threshold=pl.lit(model.threshold), top_features=pl.Series(model.explain(x), dtype=pl.String),
        model_name=pl.lit(ANOMALY_MODEL), model_version=pl.lit(version),
        scored_at=pl.lit(now, pl.Datetime("us", "UTC")), written_at=pl.lit(now, pl.Datetime("us", "UTC")))


def _scored(paths: Paths, day: str, name: str, version_or_alias: str, table: Table, now: datetime | None,
            rows: Callable[[pl.DataFrame, object, str, datetime], pl.DataFrame]) -> PartitionWrite:
    frame = day_modules(paths, day)
    if frame.is_empty():
        return publish_scores(paths, table, day, pl.DataFrame())
    version = resolve_version(name, version_or_alias, paths.root)
    model = load_model(name, version, paths.root)
    return publish_scores(paths, table, day, rows(frame, model, version, now or datetime.now(UTC)))


def score_anomalies_day(paths: Paths, day: str, version_or_alias: str = CHAMPION,
                        now: datetime | None = None) -> PartitionWrite:
    """Score the day's modules with ``sensorfleet-anomaly`` at a version or alias (default the
    champion) and publish the day's ``anomaly_scores`` partition."""
    return _scored(paths, day, ANOMALY_MODEL, version_or_alias, ANOMALY_SCORES, now, anomaly_rows)  # type: ignore[arg-type]


def yield_rows(frame: pl.DataFrame, model: YieldModel, version: str, now: datetime) -> pl.DataFrame:
    """Prediction rows for ``frame`` (module_id, session_id, captured_at, lot_id, features)."""
    x = matrix(frame, model.feature_names)
    return frame.select("module_id", "session_id", "captured_at", "lot_id").with_columns(
        probability_pass=pl.Series(model.probability_pass(x)),
        predicted_bin=pl.Series(model.predict_bin(x), dtype=pl.String),
        model_name=pl.lit(YIELD_MODEL), model_version=pl.lit(version),
        predicted_at=pl.lit(now, pl.Datetime("us", "UTC")), written_at=pl.lit(now, pl.Datetime("us", "UTC")))


def predict_yield_day(paths: Paths, day: str, version_or_alias: str = CHAMPION,
                      now: datetime | None = None) -> PartitionWrite:
    """Predict the day's modules with ``sensorfleet-yield`` at a version or alias (default the
    champion) and publish the day's ``yield_predictions`` partition."""
    return _scored(paths, day, YIELD_MODEL, version_or_alias, YIELD_PREDICTIONS, now, yield_rows)  # type: ignore[arg-type]


def lot_yield_forecast(paths: Paths) -> pl.DataFrame:
    """Per lot: modules predicted, forecast first-pass yield (mean pass probability), expected
    failures, and once known the modules tested, the actual first-pass yield and the difference
    (actual - forecast, over the tested modules)."""
    predictions = read_table(paths.tables, YIELD_PREDICTIONS.name)
    if predictions.is_empty():
        return pl.DataFrame(schema={"lot_id": pl.String, "modules": pl.UInt32, "forecast_yield": pl.Float64})
    latest = predictions.sort("module_id", "captured_at").group_by("module_id", maintain_order=True).last()
    try:
        tests = first_tests(paths).select("module_id", "passed")
    except ValueError:
        tests = pl.DataFrame(schema={"module_id": pl.String, "passed": pl.Boolean})
    joined = latest.join(tests, on="module_id", how="left")
    return (joined.group_by("lot_id").agg(
        modules=pl.len(),
        forecast_yield=pl.col("probability_pass").mean(),
        expected_failures=(1 - pl.col("probability_pass")).sum(),
        tested=pl.col("passed").is_not_null().sum(),
        actual_yield=pl.col("passed").cast(pl.Float64).mean(),
        forecast_yield_tested=pl.col("probability_pass").filter(pl.col("passed").is_not_null()).mean(),
        model_versions=pl.col("model_version").unique().sort().str.join(","),
    ).with_columns(yield_error=pl.col("actual_yield") - pl.col("forecast_yield_tested")).sort("lot_id"))
