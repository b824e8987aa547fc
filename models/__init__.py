"""The ML of sensorfleet: module-level anomaly detection (a PyOD ensemble on the feature store's
features) and yield prediction (calibrated gradient boosting), evaluated on held-out lots against
the synthetic truth, tracked and registered in MLflow with champion/challenger aliases, and the
score tables they write. Imports ``sensorfleet`` only (never Dagster); see docs/models.md.

Public functions: :func:`models.train.train_anomaly`, :func:`models.train.train_yield`,
:func:`models.scores.score_anomalies_day`, :func:`models.scores.predict_yield_day`,
:func:`models.scores.lot_yield_forecast`; the CLI is ``models.cli.models_app``.
"""
