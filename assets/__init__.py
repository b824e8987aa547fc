"""Dagster assets and asset checks, one module per data layer, thin over the core.

Assets are built by factories taking the partitions definition, so that the wiring (partitions,
resources, jobs) lives in ``pipelines`` and imports go one way: pipelines -> assets -> sensorfleet.
"""

from __future__ import annotations

from dagster import AssetsDefinition, PartitionsDefinition

from assets.capture_plans import capture_plans
from assets.captures import build_capture_assets
from assets.characterization import build_characterization_assets
from assets.features import build_feature_assets
from assets.labels import build_label_assets
from assets.models import (
    anomaly_model,
    build_score_assets,
    build_spatial_scores_asset,
    model_drift,
    spatial_model,
    yield_model,
)
from assets.optics import build_optics_assets
from assets.stations import build_station_assets
from assets.warehouse import warehouse


def build_assets(partitions_def: PartitionsDefinition) -> list[AssetsDefinition]:
    """The daily assets of the graph (with their checks), in dependency order, on ``partitions_def``."""
    return [
        build_capture_assets(partitions_def),
        build_characterization_assets(partitions_def),
        build_optics_assets(partitions_def),
        build_station_assets(partitions_def),
        build_feature_assets(partitions_def),
        build_score_assets(partitions_def),
        build_spatial_scores_asset(partitions_def),
    ]


def build_fleet_assets() -> list[AssetsDefinition]:
    """The unpartitioned assets over the whole fleet, in dependency order: labels, warehouse."""
    return [build_label_assets(), warehouse]


def build_model_assets() -> list[AssetsDefinition]:
    """The models and their drift report: unpartitioned, materialized by the retrain job (or by
    hand), never by a day's run."""
    return [anomaly_model, yield_model, spatial_model, model_drift]


def build_plan_assets() -> list[AssetsDefinition]:
    """The capture-plan study: unpartitioned, materialized by its own weekly job (or by hand)."""
    return [capture_plans]


__all__ = [
    "build_assets", "build_capture_assets", "build_characterization_assets", "build_feature_assets", "build_fleet_assets",
    "build_label_assets", "build_model_assets", "build_optics_assets", "build_plan_assets", "build_score_assets",
    "build_spatial_scores_asset", "build_station_assets", "warehouse",
]
