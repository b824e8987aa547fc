"""Drift of the line away from what the anomaly champion knows: PSI of every feature of
``module_features`` and of the anomaly score, between the modules of the champion's training
window (feature rows known when it was registered) and the last days with data."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from models.tracking import NoSuchModelError, registered_at, resolve_version
from models.train import ANOMALY_MODEL
from sensorfleet.config import Paths
from sensorfleet.features import MODULE_FEATURES, psi
from sensorfleet.tables import read_table

SCHEMA = {"feature": pl.String, "psi": pl.Float64, "reference_rows": pl.Int64, "current_rows": pl.Int64}
MIN_ROWS = 100
"""Fewest non-null values on each side for a PSI worth reading: with 10 bins the PSI of two
samples of one distribution is biased up by about 9 (1/n1 + 1/n2) (0.27 at 50 + 100 values,
past the 0.25 alarm), so smaller windows report no PSI (null) instead of a false alarm."""


def _psi(current: pl.Series, reference: pl.Series) -> float | None:
    if min(current.drop_nulls().len(), reference.drop_nulls().len()) < MIN_ROWS:
        return None
    return psi(current, reference)


def _windows(frame: pl.DataFrame, time_column: str, reference_end: datetime | None,
             days: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(reference, current): rows of the last ``days`` days before the latest, and the rows
    before that known by ``reference_end`` (all of them when None)."""
    last = frame[time_column].max()
    assert isinstance(last, datetime)
    start = last - timedelta(days=days)
    end = start if reference_end is None else min(reference_end, start)
    return frame.filter(pl.col(time_column) <= end), frame.filter(pl.col(time_column) > start)


def drift_report(paths: Paths, days: int = 7) -> pl.DataFrame:
    """One row per numeric feature (and ``anomaly_score``): PSI of the last ``days`` days against
    the champion's training window (every earlier row when there is no champion yet)."""
    features = read_table(paths.tables, MODULE_FEATURES)
    if features.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    try:
        reference_end = registered_at(ANOMALY_MODEL, resolve_version(ANOMALY_MODEL, root=paths.root), paths.root)
    except NoSuchModelError:
        reference_end = None
    reference, current = _windows(features, "feature_time", reference_end, days)
    rows = [
        {"feature": c, "psi": _psi(current[c], reference[c]), "reference_rows": reference.height, "current_rows": current.height}
        for c, dtype in features.schema.items() if "__" in c and dtype.is_numeric()
    ]
    scores = read_table(paths.tables, "anomaly_scores")
    if not scores.is_empty() and "score" in scores.columns:
        ref_s, cur_s = _windows(scores, "captured_at", reference_end, days)
        rows.append({"feature": "anomaly_score", "psi": _psi(cur_s["score"], ref_s["score"]),
                     "reference_rows": ref_s.height, "current_rows": cur_s.height})
    return pl.DataFrame(rows, schema=SCHEMA)
