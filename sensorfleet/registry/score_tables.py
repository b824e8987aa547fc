"""Tables of model outputs: ``anomaly_scores``, ``spatial_scores`` and ``yield_predictions``,
written by ``models`` (``models/scores.py``, ``models/spatial_run.py``) and declared here so that docs, the warehouse and Dagster column schemas
see them without importing the models."""

from __future__ import annotations

from sensorfleet.registry.ingest_tables import MODULE_ID, WRITTEN_AT
from sensorfleet.registry.model import Column, Table

_SESSION = Column("session_id", "str", "capture session whose features were scored")
_CAPTURED = Column("captured_at", "ts", "event time: capture time of the scored session, UTC")
_MODEL = (Column("model_name", "str", "registered model (MLflow) that made the value"),
          Column("model_version", "str", "registered model version that made the value"))


def _score_table(name: str, description: str, producer: str, values: tuple[Column, ...], made_at: Column,
                 module: str = "scores") -> Table:
    """A score table: one row per module and capture day, the values, the model version that
    made them and when (a volatile column: re-scoring unchanged values keeps the old rows)."""
    return Table(
        name=name, description=description, grain="one row per module and capture day",
        produced_by=f"models (`models.{module}.{producer}`)", key=("module_id",), volatile=(made_at.name,),
        columns=(MODULE_ID, _SESSION, _CAPTURED, *values, *_MODEL, made_at, WRITTEN_AT),
    )


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

SPATIAL_MAPS = ("dark_current_dn_per_s", "flat_residual", "shading_rel", "defect_presence")
"""The spatial model's input maps (``models.spatial.CHANNELS``; docs/models-spatial.md)."""

SPATIAL_SCORES = _score_table(
    "spatial_scores",
    "Spatial anomaly score of each module characterized that day, by a registered version of the convolutional "
    "autoencoder on its block-reduced maps (models/spatial/): reconstruction error, its 0-1 score and where the "
    "worst residual lies on the sensor.",
    "score_spatial_day",
    (Column("score", "f64", "fraction of the model's training modules (known-good) with a lower reconstruction "
                            "error (0-1; higher = more anomalous; 1 = worse than every training module)", "1"),
     Column("rank", "i64", "1 for the day's module with the highest reconstruction error"),
     Column("is_alarm", "bool", "reconstruction error above the model's threshold (the training errors' "
                                "1 - false-alarm-rate quantile)"),
     Column("error", "f64", "reconstruction error: maximum of the smoothed anomaly map (sum over the maps of "
                            "squared residuals, each map scaled to its typical training maximum)", "1"),
     Column("worst_x_px", "f64", "x of the worst residual (centre of its block) in pixels of the full sensor", "px"),
     Column("worst_y_px", "f64", "y of the worst residual (centre of its block) in pixels of the full sensor", "px"),
     Column("worst_map", "str", "input map with the largest share of the worst residual: "
                                + ", ".join(f"`{m}`" for m in SPATIAL_MAPS))),
    Column("scored_at", "ts", "when the score was computed, UTC"),
    module="spatial_run",
)

YIELD_PREDICTIONS = _score_table(
    "yield_predictions",
    "Calibrated probability that each module characterized that day passes its first final test, by a "
    "registered version of the yield model (models/yield_model.py).",
    "predict_yield_day",
    (Column("lot_id", "str", "wafer lot of the module's sensor"),
     Column("probability_pass", "f64", "calibrated probability of passing the first final test", "1"),
     Column("predicted_bin", "str", "predicted first final-test bin: `pass` when the failure probability is at "
                                    "most the model's threshold (set at its escape rate), else the most probable "
                                    "failure bin of `final_test.fail_bin` by the model's bin classifier")),
    Column("predicted_at", "ts", "when the prediction was made, UTC"),
)
