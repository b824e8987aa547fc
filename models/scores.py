"""Score tables: ``anomaly_scores`` and ``yield_predictions`` (registered here, partitioned by
capture day), the functions that score one day's modules with a registered model version and
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
from sensorfleet.registry import Column, Table, register
from sensorfleet.registry.ingest_tables import MODULE_ID, WRITTEN_AT
from sensorfleet.tables import PartitionWrite, publish_partition, read_partition, read_table

_SESSION = Column("session_id", "str", "capture session whose features were scored")
_CAPTURED = Column("captured_at", "ts", "event time: capture time of the scored session, UTC")
_MODEL = (Column("model_name", "str", "registered model (MLflow) that made the value"),
          Column("model_version", "str", "registered model version that made the value"))

def _score_table(name: str, description: str, producer: str, values: tuple[Column, ...], made_at: Column) -> Table:
    """A score table: one row per module and capture day, the values, the model version that
    made them and when (a volatile column: re-scoring unchanged values keeps the old rows)."""
    return register(Table(
        name=name, description=description, grain="one row per module and capture day",
        produced_by=f"models (`models.scores.{producer}`)", key=("module_id",), volatile=(made_at.name,),
        columns=(MODULE_ID, _SESSION, _CAPTURED, *values, *_MODEL, made_at, WRITTEN_AT),
    ))


ANOMALY_SCORES = _score_table(
    "anomaly_scores",
    "Module-level anomaly score of each module characterized that day, by a registered version of the tabular "
    "detector ensemble (models/anomaly.py).",
    "score_anomalies_day",
    (Column("score", "f64", "estimated fraction of normal modules less anomalous (0-1)", "1"),
     Column("rank", "i64", "1 for the day's most anomalous module"),
     Column("is_alarm", "bool", "score above the model's threshold (1 - false-alarm rate)"),
     Column("threshold", "f64", "the model's alarm threshold on the score scale", "1"),
     Column("top_features", "str", "features with the largest |robust z| and their z, `; `-separated")),
    Column("scored_at", "ts", "when the score was computed, UTC"),
)

YIELD_PREDICTIONS = _score_table(
    "yield_predictions",
    "Calibrated probability that each module characterized that day passes its first final test, by a "
    "registered version of the yield model (models/yield_model.py).",
    "predict_yield_day",
    (Column("lot_id", "str", "wafer lot of the module's sensor"),
     Column("probability_pass", "f64", "calibrated probability of passing the first final test", "1"),
     Column("predicted_bin", "str", "`pass`, or `fail` when the failure probability exceeds the model's "
                                    "threshold (set at its escape rate)")),
    Column("predicted_at", "ts", "when the prediction was made, UTC"),
)


def day_modules(paths: Paths, day: str) -> pl.DataFrame:
    """The day's ``module_features`` rows joined to each module's latest session of the day
    (``session_id``, ``captured_at``, ``lot_id``); empty when the day has none."""
    features = read_partition(paths.tables, MODULE_FEATURES, day)
    stats = read_partition(paths.tables, "module_stats", day)
    if features.is_empty() or stats.is_empty():
        return pl.DataFrame()
    sessions = (stats.sort("module_id", "captured_at").group_by("module_id", maintain_order=True).last()
                .select("module_id", "session_id", "captured_at", "lot_id"))
    return features.join(sessions, on="module_id", how="inner").sort("module_id")


def _publish(paths: Paths, table: Table, day: str, rows: pl.DataFrame) -> PartitionWrite:
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
        return _publish(paths, table, day, pl.DataFrame())
    version = resolve_version(name, version_or_alias, paths.root)
    model = load_model(name, version, paths.root)
    return _publish(paths, table, day, rows(frame, model, version, now or datetime.now(UTC)))


def score_anomalies_day(paths: Paths, day: str, version_or_alias: str = CHAMPION,
                        now: datetime | None = None) -> PartitionWrite:
    """Score the day's modules with ``sensorfleet-anomaly`` at a version or alias (default the
    champion) and publish the day's ``anomaly_scores`` partition."""
    return _scored(paths, day, ANOMALY_MODEL, version_or_alias, ANOMALY_SCORES, now, anomaly_rows)  # type: ignore[arg-type]


def yield_rows(frame: pl.DataFrame, model: YieldModel, version: str, now: datetime) -> pl.DataFrame:
    """Prediction rows for ``frame`` (module_id, session_id, captured_at, lot_id, features)."""
    p_pass = model.probability_pass(matrix(frame, model.feature_names))
    return frame.select("module_id", "session_id", "captured_at", "lot_id").with_columns(
        probability_pass=pl.Series(p_pass),
        predicted_bin=pl.Series(np.where(1 - p_pass > model.fail_threshold, "fail", "pass"), dtype=pl.String),
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
