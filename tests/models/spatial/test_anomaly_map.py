"""Scoring against the truth: faulty modules score higher, the worst block is the planted defect."""

from __future__ import annotations

import math

import polars as pl

from models.spatial import SCORE_SCHEMA, SpatialModel, score_sessions
from tests.models.spatial.conftest import Fleet

SPATIAL_FAULTS = ["particle", "column_defect", "shading_tilt", "high_dark_current"]


def test_scores_frame(fleet: Fleet, model: SpatialModel) -> None:
    scores = score_sessions(model, fleet.paths, fleet.sessions, batch_modules=5)
    assert scores.schema == pl.Schema(SCORE_SCHEMA) and scores.height == len(fleet.sessions)
    assert sorted(scores["rank"].to_list()) == list(range(1, scores.height + 1))
    assert scores.sort("rank")["error"].is_sorted(descending=True)
    assert scores["score"].is_between(0, 1).all()
    assert (scores["is_alarm"] == (scores["error"] > model.metadata.threshold_error)).all()


def test_faulty_modules_score_above_normal_ones(fleet: Fleet, model: SpatialModel) -> None:
    scores = score_sessions(model, fleet.paths, fleet.sessions).join(
        fleet.truth_modules.select("session_id", "fault_class"), on="session_id")
    faulty = scores.filter(pl.col("fault_class").is_in(SPATIAL_FAULTS))
    normal = scores.filter(pl.col("fault_class").is_null())
    assert faulty.height == 4 and normal.height == 6
    assert faulty["error"].mean() > 2 * normal["error"].mean()  # type: ignore[operator]
    assert faulty["error"].min() > normal["error"].median()  # type: ignore[operator]


def test_worst_block_lies_on_the_planted_particle_or_column(fleet: Fleet, model: SpatialModel) -> None:
    scores = score_sessions(model, fleet.paths, fleet.sessions)
    for fault, defect_class in [("particle", "blemish"), ("column_defect", "bad_column")]:
        session = fleet.sessions_where(pl.col("fault_class") == fault)[0]
        row = scores.filter(pl.col("session_id") == session).row(0, named=True)
        planted = fleet.truth_defects.filter((pl.col("session_id") == session) & (pl.col("class") == defect_class))
        if defect_class == "blemish":
            distance = min(math.hypot(row["worst_x_px"] - x, row["worst_y_px"] - y) - r
                           for x, y, r in planted.select("x", "y", "radius_px").rows())
        else:
            distance = min(abs(row["worst_x_px"] - x) for x in planted["x"].unique().to_list())
        assert distance <= 4, (fault, row, planted.head(5))
        assert row["worst_channel"] in ("defect_presence", "flat_residual")
