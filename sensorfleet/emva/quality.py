"""Which session of a day looks worst: the one ranking the day runner and the Dagster asset share."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from sensorfleet.emva.config import CharacterizationConfig

PTC_R2_COLUMN = "ptc_fit_r2"
MIN_FIT_R2 = CharacterizationConfig.min_fit_r2
"""Smallest acceptable R^2 of the photon-transfer line fit (``CharacterizationConfig.min_fit_r2``)."""


def worst_session(module_stats: pl.DataFrame, violations: Iterable[Mapping[str, Any]] = (),
                  min_fit_r2: float = MIN_FIT_R2) -> str | None:
    """``session_id`` of the worst row of ``module_stats``: most metric ``violations`` (rows with
    a ``session_id``), then a PTC fit R^2 below ``min_fit_r2`` (or not finite), then most defective
    pixels (``defect_pixels_total``), then lowest R^2; the first such row on ties. None when empty."""
    if module_stats.is_empty():
        return None
    counts: dict[str, int] = {}
    for v in violations:
        counts[str(v["session_id"])] = counts.get(str(v["session_id"]), 0) + 1

    def badness(row: dict[str, Any]) -> tuple[int, bool, int, float]:
        fit = row.get(PTC_R2_COLUMN)
        fit_value = fit if isinstance(fit, float) and math.isfinite(fit) else -math.inf
        defects = row.get("defect_pixels_total")
        return (
            counts.get(str(row["session_id"]), 0),
            fit_value < min_fit_r2,
            int(defects) if isinstance(defects, int) else 0,
            -fit_value,
        )

    return str(max(module_stats.iter_rows(named=True), key=badness)["session_id"])
