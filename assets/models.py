"""Models layer: the anomaly and yield models (trained by the ``retrain`` job only, never by a
day's materialization), the day's scores by the champion, and the drift of the line away from
what the champion was trained on.

Thin over ``models`` (training, MLflow registry, scoring) and ``sensorfleet.features`` (PSI).
"""

# No `from __future__ import annotations`: Dagster reads the resource annotation at decoration time.
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
    multi_asset,
)
from pydantic import Field

from assets._common import NOT_SCORED_REASON, SCORED, frame_md, png_metadata
from assets.characterization import MODULE_STATS, PIXEL_MAPS
from assets.features import MODULE_FEATURES
from assets.labels import FINAL_TEST_ASSET
from assets.resources import StorageResource
from assets.table_metadata import definition_metadata, row_count_metadata, table_spec

if TYPE_CHECKING:
    from models.spatial_run import SpatialDay
    from sensorfleet.config import Paths

GROUP = "models"
OWNER = "team:ml-platform"
ANOMALY_MODEL_ASSET = "anomaly_model"
YIELD_MODEL_ASSET = "yield_model"
ANOMALY_SCORES = "anomaly_scores"
YIELD_PREDICTIONS = "yield_predictions"
SPATIAL_MODEL_ASSET = "spatial_model"
SPATIAL_SCORES = "spatial_scores"
MODEL_DRIFT = "model_drift"
CHECK_DRIFT = "line_within_training_distribution"
RETRAIN_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7))
"""The retrain schedule runs weekly: a model older than 8 days means a missed retrain."""
MAX_PSI = 0.25
CODE_VERSION = "1"
"""Version of this layer's code as Dagster sees it (bump when what a step writes changes)."""
DRIFT_DAYS = 7


def _model_asset(name: str, kinds: set[str], deps: list[str], description: str) -> Any:
    """The decorator of a model-training asset: the models group and owner, the retrain freshness."""
    return asset(name=name, group_name=GROUP, kinds=kinds, owners=[OWNER], deps=deps,
                 freshness_policy=RETRAIN_FRESHNESS, description=description)


def _plots(paths_root: Path, run_id: str, name: str) -> dict[str, MetadataValue]:
    """The run's evaluation plots (logged to MLflow) inline for the UI, saved under plots/."""
    from models.tracking import connect

    client = connect(paths_root)
    out: dict[str, MetadataValue] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = Path(client.download_artifacts(run_id, "plots", tmp))
        except Exception:  # a tracking server without the artifacts: the metrics still show
            return out
        for png in sorted(folder.glob("*.png")):
            inline, path = png_metadata(png.read_bytes(), paths_root / "plots" / "models" / name / png.name, png.stem)
            out[f"plot_{png.stem}"] = inline
            out[f"plot_{png.stem}_path"] = path
    return out


def _training_metadata(paths_root: Path, run: object, name: str) -> dict[str, MetadataValue]:
    registered = run.registered  # type: ignore[attr-defined]
    meta: dict[str, MetadataValue] = {
        "metrics": MetadataValue.json({k: round(float(v), 5) for k, v in run.metrics.items()}),  # type: ignore[attr-defined]
    }
    for key, frame in run.details.items():  # type: ignore[attr-defined]
        meta[key] = MetadataValue.md(frame_md(frame))
    if registered is not None:
        meta.update({
            "model_version": MetadataValue.text(registered.version), "alias": MetadataValue.text(registered.alias),
            "promotion": MetadataValue.text(registered.reason), "mlflow_run_id": MetadataValue.text(registered.run_id),
        })
        meta.update(_plots(paths_root, registered.run_id, name))
    return meta


@_model_asset(
    ANOMALY_MODEL_ASSET, {"scikit-learn", "mlflow"}, [MODULE_FEATURES, FINAL_TEST_ASSET],
    description="Module-level anomaly detector (PyOD ensemble on the default feature service, combined by rank, "
                "threshold at 1 % false alarms on normal modules), trained on known-good modules of the earlier "
                "lots, evaluated on held-out later lots, registered in MLflow; champion only if not worse.",
)
def anomaly_model(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
    from models.train import ANOMALY_MODEL, train_anomaly

    paths = storage.paths()
    run = train_anomaly(paths)
    context.log.info(f"{ANOMALY_MODEL}: {run.registered}")
    return MaterializeResult(metadata=_training_metadata(paths.root, run, ANOMALY_MODEL_ASSET))


@_model_asset(
    YIELD_MODEL_ASSET, {"scikit-learn", "mlflow"}, [MODULE_FEATURES, FINAL_TEST_ASSET],
    description="Yield predictor: calibrated HistGradientBoostingClassifier on the yield feature service, "
                "validated by lot and time beside chance and an oracle given the truth; registered in MLflow.",
)
def yield_model(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
    from models.train import YIELD_MODEL, train_yield

    paths = storage.paths()
    run = train_yield(paths)
    context.log.info(f"{YIELD_MODEL}: {run.registered}")
    return MaterializeResult(metadata=_training_metadata(paths.root, run, YIELD_MODEL_ASSET))


def _not_scored(context: AssetExecutionContext, asset_key: str, reason: Exception) -> MaterializeResult:
    """No champion to score the day with (before the first training): an expected state, logged
    at info level and recorded in the materialization (the UI and the CLI summary show it)."""
    context.log.info(f"{asset_key}: {reason}")
    return MaterializeResult(asset_key=asset_key, metadata={
        SCORED: MetadataValue.bool(False), NOT_SCORED_REASON: MetadataValue.text(str(reason))})


class SpatialTrainingRunConfig(Config):  # type: ignore[misc]
    """Launchpad settings of a spatial training run (the defaults are what the retrain job runs)."""

    epochs: int = Field(default=150, ge=1, description="training epochs over the known-good modules")
    seed: int = Field(default=0, description="seed of the weights' initialization and the batch order")


@_model_asset(
    SPATIAL_MODEL_ASSET, {"pytorch", "mlflow"}, [PIXEL_MAPS, FINAL_TEST_ASSET],
    description="Spatial anomaly model: convolutional autoencoder on each module's block-reduced maps (dark "
                "current, shading-corrected flat, shading, defects), trained on known-good modules of the earlier "
                "lots, evaluated on held-out later lots, registered in MLflow; champion only if not worse.",
)
def spatial_model(context: AssetExecutionContext, config: SpatialTrainingRunConfig,
                  storage: StorageResource) -> MaterializeResult:
    from models.spatial_run import SPATIAL_MODEL, default_config, train_spatial_run

    paths = storage.paths()
    run = train_spatial_run(paths, replace(default_config(), epochs=config.epochs), seed=config.seed)
    context.log.info(f"{SPATIAL_MODEL}: {run.registered} in {run.metrics['training_seconds']:.1f} s")
    meta = _training_metadata(paths.root, run, SPATIAL_MODEL_ASSET)
    meta["seed"] = MetadataValue.int(run.model.metadata.seed)
    meta["training_seconds"] = MetadataValue.float(float(run.metrics["training_seconds"]))
    return MaterializeResult(metadata=meta)


def build_spatial_scores_asset(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The day's ``spatial_scores`` by the spatial champion (after characterization: it reads the
    maps), with the worst module's anomaly map as a plot. Without a champion, nothing is written."""

    @asset(
        name=SPATIAL_SCORES, group_name=GROUP, kinds={"pytorch", "parquet"}, owners=[OWNER], code_version=CODE_VERSION,
        partitions_def=partitions_def, deps=[PIXEL_MAPS, MODULE_STATS, SPATIAL_MODEL_ASSET],
        metadata=definition_metadata(SPATIAL_SCORES),
        description="Table `spatial_scores`: each module of the day scored by the spatial champion (0-1, higher = "
                    "more anomalous: the share of known-good training modules it reconstructs worse than), its rank, "
                    "alarm and where its worst residual lies (x, y in sensor pixels, which map).",
    )
    def spatial_scores(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
        from models.tracking import no_model_store, store_missing

        paths = storage.paths()
        if (missing := store_missing(paths.root)) is not None:  # before the first training: no import
            return _not_scored(context, SPATIAL_SCORES, no_model_store(missing))  # of PyTorch (~1 s)
        from models.spatial_run import SPATIAL_MODEL, score_spatial_day

        try:
            scored = score_spatial_day(paths, context.partition_key)
        except LookupError as exc:  # no champion registered yet: run the retrain job first
            return _not_scored(context, SPATIAL_SCORES, exc)
        meta: dict[str, MetadataValue] = {
            **row_count_metadata(scored.write.rows, partitioned=True), SCORED: MetadataValue.bool(True),
            "model": MetadataValue.text(SPATIAL_MODEL), "table": MetadataValue.path(str(scored.write.path))}
        if scored.model is not None and scored.rows.height:
            meta.update(_worst_module_metadata(paths, context.partition_key, scored))
        return MaterializeResult(metadata=meta)

    return spatial_scores


def _worst_module_metadata(paths: "Paths", day: str, scored: "SpatialDay") -> dict[str, MetadataValue]:
    """The day's top-ranked modules and the anomaly-map plot of the worst one."""
    from models.spatial_run import anomaly_map_figure
    from sensorfleet.plotting import figure_png

    rows = scored.rows
    worst = rows.row(0, named=True)  # rows are sorted by rank
    png = figure_png(anomaly_map_figure(scored.model, paths, worst["session_id"]))
    inline, path = png_metadata(png, paths.root / "plots" / "models" / SPATIAL_SCORES / f"{day}.png",
                                f"worst module {worst['module_id']}")
    return {
        "model_version": MetadataValue.text(str(worst["model_version"])),
        "alarms": MetadataValue.int(int(rows["is_alarm"].sum())),
        "top_modules": MetadataValue.md(frame_md(rows.select(
            "rank", "module_id", "score", "error", "is_alarm", "worst_x_px", "worst_y_px", "worst_map").head(10))),
        "plot_worst_anomaly_map": inline, "plot_worst_anomaly_map_path": path,
    }


def build_score_assets(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The day's ``anomaly_scores`` and ``yield_predictions`` by each model's champion (one step,
    after the day's features). Without a champion yet, nothing is written and the metadata says so."""

    @multi_asset(
        name="score_modules",
        partitions_def=partitions_def,
        specs=[
            table_spec(ANOMALY_SCORES, group=GROUP, owner=OWNER, code_version=CODE_VERSION, deps=[MODULE_FEATURES, ANOMALY_MODEL_ASSET],
                       description="Table `anomaly_scores`: each module of the day scored by the anomaly champion "
                                   "(0-1, higher = more anomalous), its rank, alarm and the features that drove it."),
            table_spec(YIELD_PREDICTIONS, group=GROUP, owner=OWNER, code_version=CODE_VERSION, deps=[MODULE_FEATURES, YIELD_MODEL_ASSET],
                       description="Table `yield_predictions`: each module of the day's probability of passing final "
                                   "test by the yield champion, and its predicted bin."),
        ],
    )
    def score_modules(context: AssetExecutionContext, storage: StorageResource) -> Iterator[MaterializeResult]:
        from models.tracking import no_model_store, store_missing

        paths = storage.paths()
        day = context.partition_key
        if (missing := store_missing(paths.root)) is not None:  # before the first training: no import of
            for asset_key in (ANOMALY_SCORES, YIELD_PREDICTIONS):  # scikit-learn or MLflow, no database made
                yield _not_scored(context, asset_key, no_model_store(missing))
            return
        from models.scores import predict_yield_day, score_anomalies_day
        from models.train import ANOMALY_MODEL, YIELD_MODEL

        for asset_key, model_name, score in ((ANOMALY_SCORES, ANOMALY_MODEL, score_anomalies_day),
                                             (YIELD_PREDICTIONS, YIELD_MODEL, predict_yield_day)):
            try:
                written = score(paths, day)
            except LookupError as exc:  # no champion registered yet: run the retrain job first
                yield _not_scored(context, asset_key, exc)
                continue
            yield MaterializeResult(asset_key=asset_key, metadata={
                **row_count_metadata(written.rows, partitioned=True), SCORED: MetadataValue.bool(True),
                "model": MetadataValue.text(model_name), "table": MetadataValue.path(str(written.path))})

    return score_modules


@asset(
    name=MODEL_DRIFT, group_name=GROUP, kinds={"polars"}, owners=[OWNER],
    deps=[MODULE_FEATURES, ANOMALY_SCORES],
    check_specs=[AssetCheckSpec(CHECK_DRIFT, asset=MODEL_DRIFT,
                                description=f"No feature or score PSI above {MAX_PSI} between the champion's "
                                            f"training window and the last {DRIFT_DAYS} days.")],
    description=f"Drift report: PSI per feature of module_features and of the anomaly score, between the modules "
                f"the anomaly champion was trained on and the last {DRIFT_DAYS} days with data.",
)
def model_drift(context: AssetExecutionContext, storage: StorageResource) -> Iterator[MaterializeResult | AssetCheckResult]:
    from models.drift import drift_report

    report = drift_report(storage.paths(), days=DRIFT_DAYS)
    drifted = report.filter(pl.col("psi") > MAX_PSI).sort("psi", descending=True)
    yield MaterializeResult(metadata={
        "compared": MetadataValue.int(report.height), "drifted": MetadataValue.int(drifted.height),
        "largest_psi": MetadataValue.md(frame_md(report.sort("psi", descending=True, nulls_last=True))),
    })
    yield AssetCheckResult(check_name=CHECK_DRIFT, passed=drifted.is_empty(), severity=AssetCheckSeverity.WARN,
                           metadata={"drifted": MetadataValue.md(frame_md(drifted))})
