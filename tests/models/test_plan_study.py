"""The capture-plan study with the champion models on the models' small fleet: the recomputed
session features reproduce the stored ones, decisions are compared per plan, metrics only without
a champion, the ``plan study`` command and the ``capture_plans`` asset."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from dagster import materialize
from typer.testing import CliRunner

from assets.capture_plans import capture_plans
from assets.resources import StorageResource
from models.anomaly import AnomalyConfig
from models.plan_cli import plan_app
from models.plan_study import decision_check, plan_features, run_plan_study
from models.train import train_anomaly, train_yield
from models.yield_model import YieldConfig
from sensorfleet.capture_plan.plans import FULL
from sensorfleet.capture_plan.study import (
    NO_CHAMPION,
    StudySettings,
    characterize_all,
    study_sessions,
)
from sensorfleet.config import Paths
from sensorfleet.features.catalog import SESSION_VIEWS
from sensorfleet.features.daily import MODULE_FEATURES
from sensorfleet.tables import read_table


@pytest.fixture(scope="module")
def trained(fleet: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    """The shared fleet with both champions in an MLflow store of this module's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path_factory.mktemp('plan-mlflow') / 'mlflow.db'}")
        train_anomaly(fleet, AnomalyConfig(seed=1))
        train_yield(fleet, YieldConfig(seed=0, max_iter=60))
        yield fleet


def test_without_a_champion_the_study_reports_metrics_only(root: Paths) -> None:
    assert decision_check(root) is None
    result = run_plan_study(root, StudySettings(modules=2, workers=1), write=False)
    assert set(result.plans["models"].to_list()) == {NO_CHAMPION}
    assert (result.plans["decisions_checked"] == 0).all()


def test_full_plan_features_reproduce_the_stored_ones(trained: Paths) -> None:
    sessions = study_sessions(trained, modules=6)
    done = characterize_all(sessions, [FULL], StudySettings(workers=1))
    features = plan_features(trained, done.modules, done.channels)
    stored = read_table(trained.tables, MODULE_FEATURES)
    columns = [f"{v.name}__{f.name}" for v in SESSION_VIEWS for f in v.features]
    assert features.height == 6 and set(columns) <= set(features.columns)
    days = {s.module_id: s.day for s in sessions}
    mine = stored.filter(pl.col("module_id").is_in(list(days))).with_columns(
        day=pl.col("capture_date").cast(pl.String)).filter(pl.col("day") == pl.col("module_id").replace_strict(days))
    joined = features.join(pl.DataFrame({"session_id": [s.session_id for s in sessions],
                                         "module_id": [s.module_id for s in sessions]}), on="session_id")
    got = joined.sort("module_id").select(columns)
    want = mine.sort("module_id").select(columns)
    for name in columns:
        a, b = got[name].cast(pl.Float64).to_numpy(), want[name].cast(pl.Float64).to_numpy()
        assert ((a == b) | (abs(a - b) <= 1e-9 * abs(b)) | ((a != a) & (b != b))).all(), name


def test_the_study_compares_the_champions_decisions(trained: Paths) -> None:
    result = run_plan_study(trained, StudySettings(modules=10, workers=1), write=False)
    plans = result.plans
    assert (plans["decisions_checked"] == 10).all()
    full = plans.filter(pl.col("plan_id") == "full").row(0, named=True)
    assert full["yield_changed"] == full["alarms_changed"] == 0 and full["changed_decisions_share"] == 0.0
    best = result.recommended
    assert best["changed_decisions_share"] <= 0.02 and best["metrics_within_tolerance"]
    assert "sensorfleet-yield v" in best["models"] and "sensorfleet-anomaly v" in best["models"]
    assert ((plans["changed_decisions_share"] * 10).round() <= plans["yield_changed"] + plans["alarms_changed"]).all()


@pytest.mark.parametrize(("args", "message"), [
    (["--tolerance", "gain_k_dn_per_e"], "expected METRIC=LIMIT"), (["--tolerance", "nope=1%"], "unknown metric"),
    (["--coverage", "0"], "coverage"), (["--max-changed", "2"], "max_changed_share"),
    (["--modules", "0"], "modules must be >= 1"), (["--days", "0"], "days must be >= 1"),
    (["--frame-overhead-s", "-1"], "frame_overhead_s"), (["--workers", "-1"], "workers"),
])
def test_the_command_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(plan_app, ["study", "--root", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_the_command_on_an_empty_root_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(plan_app, ["study", "--root", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 1 and "no module_stats rows" in result.output


def test_the_command_prints_the_recommended_plan(trained: Paths) -> None:
    env = {"SENSORFLEET_ROOT": str(trained.root), "MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
    result = CliRunner().invoke(plan_app, ["study", "--modules", "4", "--workers", "1",
                                           "--tolerance", "dark_offset_dn=1"], env=env)
    assert result.exit_code == 0, result.output
    assert "<- recommended" in result.output and "\nrecommended: " in result.output
    assert "4 modules studied" in result.output and "sensorfleet-yield v" in result.output
    table = read_table(trained.tables, "capture_plans")
    assert table.filter(pl.col("recommended")).height >= 1
    assert list((trained.root / "plots" / "capture_plans").glob("*.png"))


def test_the_asset_materializes_with_its_plot(trained: Paths) -> None:
    result = materialize([capture_plans], resources={"storage": StorageResource.for_paths(trained)},
                         run_config={"ops": {"capture_plans": {"config": {"modules": 4, "workers": 1}}}})
    assert result.success
    meta = result.asset_materializations_for_node("capture_plans")[0].metadata
    assert meta["recommended_plan"].value and meta["modules_studied"].value == 4
    assert str(meta["plot_station_time_vs_accuracy"].value).startswith("**station time against accuracy**")
    assert Path(str(meta["plot_path"].value)).is_file()
