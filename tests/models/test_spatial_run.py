"""The spatial model as a registered model and Dagster assets, on the models' small fleet: trained
on known-good modules of the training lots, registered in MLflow with promotion by rule, the day's
``spatial_scores`` by the champion (deterministic for a seed, the registry's columns), the
assets materialized with the anomaly-map plot."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DailyPartitionsDefinition, materialize
from typer.testing import CliRunner

from assets.models import (
    SPATIAL_MODEL_ASSET,
    SPATIAL_SCORES,
    build_spatial_scores_asset,
    spatial_model,
)
from assets.resources import StorageResource
from models.cli import models_app
from models.data import first_tests, module_sessions
from models.spatial_run import (
    SPATIAL_MODEL,
    default_config,
    score_spatial_day,
    spatial_split,
    train_spatial_run,
)
from models.tracking import CHAMPION, connect
from sensorfleet.config import Paths
from sensorfleet.registry import SPATIAL_SCORES as TABLE
from sensorfleet.registry.score_tables import SPATIAL_MAPS
from sensorfleet.tables import list_partitions, read_partition

FAST = replace(default_config(), epochs=4)


def test_split_trains_on_known_good_modules_of_earlier_lots(fleet: Paths) -> None:
    split = spatial_split(fleet)
    labels = first_tests(fleet).join(module_sessions(fleet), on="module_id")
    train = labels.filter(pl.col("session_id").is_in(split.train_sessions))
    assert train.height == len(split.train_sessions) > 10 and train["passed"].all()
    assert set(train["lot_id"]).isdisjoint(set(split.test["lot_id"])) and not split.test["passed"].all()
    assert train["captured_at"].max() < split.test["captured_at"].min()  # type: ignore[operator]


def test_run_registers_scores_name_the_version_and_repeat_for_a_seed(root: Paths) -> None:
    first = train_spatial_run(root, FAST, seed=3)
    assert first.registered is not None and first.registered.alias == CHAMPION
    assert {"roc_auc", "pr_auc", "threshold_error", "training_seconds"} <= set(first.metrics)
    client = connect(root.root)
    version = client.get_model_version(SPATIAL_MODEL, first.registered.version)
    files = {a.path for a in client.list_artifacts(version.run_id, "model")}
    assert files == {"model/weights.pt", "model/metadata.json"}
    assert {a.path for a in client.list_artifacts(version.run_id, "plots")} == {
        "plots/roc.png", "plots/worst_heldout_anomaly_map.png"}
    day = list_partitions(root.tables, "module_stats")[-1]
    scored = score_spatial_day(root, day)
    rows = read_partition(root.tables, TABLE.name, day)
    assert rows.drop("capture_date").columns == TABLE.column_names and scored.write.rows == rows.height > 0
    assert set(rows["model_version"]) == {first.registered.version} and rows["score"].is_between(0, 1).all()
    assert sorted(rows["rank"]) == list(range(1, rows.height + 1)) and set(rows["worst_map"]) <= set(SPATIAL_MAPS)
    assert rows["worst_x_px"].is_between(0, 64).all() and rows["worst_y_px"].is_between(0, 48).all()
    # the same seed and sessions: the same weights, so the same scores; the challenger rule applies
    again = train_spatial_run(root, FAST, seed=3)
    assert again.registered is not None and again.registered.alias == CHAMPION
    assert again.metrics["roc_auc"] == first.metrics["roc_auc"]
    assert "vs champion v1's" in again.registered.reason
    rescored = score_spatial_day(root, day).rows
    assert rescored.drop("model_version", "scored_at", "written_at").equals(
        scored.rows.drop("model_version", "scored_at", "written_at"))
    scored_cli = CliRunner().invoke(models_app, ["score", "--model", "spatial", "--day", day, "--root", str(root.root)])
    assert scored_cli.exit_code == 0 and f"spatial {day}: {rows.height} rows" in scored_cli.output, scored_cli.output
    other = train_spatial_run(root, FAST, seed=4, register=False)
    assert other.model.metadata.training_errors != first.model.metadata.training_errors


def test_assets_train_then_score_a_day_with_the_anomaly_map(root: Paths) -> None:
    storage = StorageResource.for_paths(root)
    trained = materialize([spatial_model], resources={"storage": storage},
                          run_config={"ops": {SPATIAL_MODEL_ASSET: {"config": {"epochs": 3, "seed": 1}}}})
    assert trained.success
    meta = trained.asset_materializations_for_node(SPATIAL_MODEL_ASSET)[0].metadata
    assert meta["alias"].value in ("champion", "challenger") and "plot_roc" in meta and meta["seed"].value == 1
    day = list_partitions(root.tables, "module_stats")[0]
    days = DailyPartitionsDefinition(start_date=day)
    scored = materialize([build_spatial_scores_asset(days)], partition_key=day, resources={"storage": storage},
                         selection=[AssetKey(SPATIAL_SCORES)])
    assert scored.success
    meta = scored.asset_materializations_for_node(SPATIAL_SCORES)[0].metadata
    assert meta["scored"].value is True and meta["dagster/partition_row_count"].value > 0
    assert "worst module" in meta["plot_worst_anomaly_map"].value  # type: ignore[operator]
    payload = str(meta["plot_worst_anomaly_map"].value).split("data:image/png;base64,", 1)[1].rstrip(")")
    assert base64.b64decode(payload).startswith(b"\x89PNG")
    assert (root.root / "plots" / "models" / SPATIAL_SCORES / f"{day}.png").is_file()


def test_without_a_champion_the_day_is_not_scored(fleet: Paths, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(LookupError, match="no version with alias 'champion'"):
        score_spatial_day(fleet, list_partitions(fleet.tables, "module_stats")[0])
