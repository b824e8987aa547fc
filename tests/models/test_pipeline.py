"""Train, register, promote and score on the small fleet: the run logs what it must, aliases
follow the rule, score tables follow the registry and name the version, the CLI drives it all."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from models.anomaly import AnomalyConfig
from models.cli import models_app
from models.data import first_tests, labelled_training_set, split_by_lot_and_time
from models.scores import (
    ANOMALY_SCORES,
    YIELD_PREDICTIONS,
    lot_yield_forecast,
    predict_yield_day,
    score_anomalies_day,
)
from models.tracking import CHALLENGER, CHAMPION, connect
from models.train import ANOMALY_MODEL, YIELD_MODEL, train_anomaly, train_yield
from models.yield_model import YieldConfig
from sensorfleet.config import Paths
from sensorfleet.features import rebuild
from sensorfleet.synth.fleet import FAIL_BINS
from sensorfleet.tables import list_partitions, read_partition


def test_split_holds_out_the_latest_whole_lots(fleet: Paths, tmp_path: Path) -> None:
    frame, manifest = labelled_training_set(fleet, "yield_v1", tmp_path / "set.parquet")
    assert manifest.is_file() and frame.height == first_tests(fleet).height == 120
    split = split_by_lot_and_time(frame)
    train, test = frame.filter(~split.is_test(frame)), frame.filter(split.is_test(frame))
    assert set(train["lot_id"]).isdisjoint(set(test["lot_id"])) and 0 < test.height <= 0.4 * frame.height
    assert train["captured_at"].max() < test["captured_at"].min()  # type: ignore[operator]


def test_anomaly_run_is_logged_registered_and_separates_faults(root: Paths, tmp_path: Path) -> None:
    run = train_anomaly(root, AnomalyConfig(seed=1))
    assert run.registered is not None and run.registered.alias == CHAMPION
    assert run.metrics["roc_auc"] > 0.8, run.metrics
    client = connect(root.root)
    version = client.get_model_version(ANOMALY_MODEL, run.registered.version)
    mlrun = client.get_run(version.run_id)
    assert {"roc_auc", "pr_auc", "f1_max", "recall_at_far", "threshold"} <= set(mlrun.data.metrics)
    assert mlrun.data.tags["code_version"] and mlrun.data.tags["threshold"] == "0.990000"
    assert version.tags["promotion_reason"].startswith("first version")
    artifacts = {a.path for a in client.list_artifacts(mlrun.info.run_id, "training_set")}
    assert any(p.endswith(".manifest.json") for p in artifacts) and any(p.endswith(".spine.parquet") for p in artifacts)
    assert {a.path for a in client.list_artifacts(mlrun.info.run_id, "plots")} == {"plots/roc.png"}
    kept = sorted((root.root / "models" / "training_sets" / ANOMALY_MODEL).glob("*/*.manifest.json"))[-1]
    rebuilt = rebuild(kept, tmp_path / "again.parquet")
    assert rebuilt.read_bytes() == kept.with_name(kept.name.removesuffix(".manifest.json")).read_bytes()
    assert set(run.details["per_fault_class"]["fault_class"]) <= {
        "high_dark_current", "column_defect", "particle", "shading_tilt", "low_qe", "noisy"}


def test_yield_run_reports_chance_and_oracle_and_promotion_follows_the_rule(root: Paths) -> None:
    first = train_yield(root, YieldConfig(seed=0, max_iter=60))
    m = first.metrics
    assert m["roc_auc"] > m["chance_roc_auc"] and 0 < m["brier"] < 1  # 120 modules: near chance
    assert "oracle_roc_auc" in m and m["roc_auc_vs_oracle"] == pytest.approx(m["roc_auc"] / m["oracle_roc_auc"])
    assert "ceiling_roc_auc" in m and "ceiling_brier" in m
    assert first.details["permutation_importance"].height == len(first.model.feature_names)
    # predicted_bin per final-test bin, evaluated per bin on the held-out lots
    per_bin = first.details["per_bin"]
    assert set(per_bin["bin"]) <= {"pass", *FAIL_BINS} and "pass" in set(per_bin["bin"])
    assert per_bin["support"].sum() == m["test_modules"]
    for row in per_bin.iter_rows(named=True):
        assert m[f"bin_{row['bin']}_recall"] == pytest.approx(row["recall"], nan_ok=True)
    assert 0 <= m["bin_accuracy"] <= 1 and len(first.model.fail_bins) >= 2 and first.model.bin_estimator is not None
    assert first.registered is not None and first.registered.alias == CHAMPION
    # a deliberately weak model (3 stumps) is not promoted over the champion
    weak = train_yield(root, YieldConfig(seed=0, max_iter=1, max_leaf_nodes=2, learning_rate=0.01))
    assert weak.registered is not None
    client = connect(root.root)
    reason = client.get_model_version(YIELD_MODEL, weak.registered.version).tags["promotion_reason"]
    assert "vs champion v" in reason and "on the same held-out data" in reason
    if weak.metrics["roc_auc"] < m["roc_auc"] - 0.01:
        assert weak.registered.alias == CHALLENGER and reason.startswith("not promoted: roc_auc")
    else:
        assert weak.registered.alias == CHAMPION and reason.startswith("promoted: roc_auc")
    champion = str(client.get_model_version_by_alias(YIELD_MODEL, CHAMPION).version)
    assert champion == (weak.registered.version if weak.registered.alias == CHAMPION else first.registered.version)


def test_scoring_writes_registry_tables_naming_the_version(root: Paths) -> None:
    anomaly = train_anomaly(root, AnomalyConfig(seed=1))
    yielded = train_yield(root, YieldConfig(seed=0, max_iter=60))
    assert anomaly.registered and yielded.registered
    day = list_partitions(root.tables, "module_features")[-1]
    wrote = score_anomalies_day(root, day, anomaly.registered.version)
    scores = read_partition(root.tables, "anomaly_scores", day)
    assert wrote.rows == scores.height > 0 and scores.drop("capture_date").columns == ANOMALY_SCORES.column_names
    assert set(scores["model_version"]) == {anomaly.registered.version}
    assert sorted(scores["rank"]) == list(range(1, scores.height + 1)) and scores["score"].is_between(0, 1).all()
    predict_yield_day(root, day, yielded.registered.version)
    predictions = read_partition(root.tables, "yield_predictions", day)
    assert predictions.drop("capture_date").columns == YIELD_PREDICTIONS.column_names
    assert set(predictions["predicted_bin"]) <= {"pass", *FAIL_BINS}  # a final-test bin, never a bare "fail"
    assert (predictions["predicted_bin"] == "pass").to_list() == (
        1 - predictions["probability_pass"] <= yielded.model.fail_threshold).to_list()
    forecast = lot_yield_forecast(root)
    assert forecast.height >= 1 and forecast["forecast_yield"].is_between(0, 1).all()
    assert forecast.filter(pl.col("tested") > 0)["actual_yield"].is_not_null().all()


def test_cli_lists_shows_promotes_and_honours_the_root_env(root: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    run = train_anomaly(root, AnomalyConfig(seed=2))
    assert run.registered is not None
    monkeypatch.setenv("SENSORFLEET_ROOT", str(root.root))
    cli = CliRunner()
    listed = cli.invoke(models_app, ["list"])
    assert listed.exit_code == 0 and ANOMALY_MODEL in listed.output and "[champion]" in listed.output
    shown = cli.invoke(models_app, ["show", ANOMALY_MODEL, run.registered.version])
    assert shown.exit_code == 0 and "metric roc_auc" in shown.output and "run tag code_version" in shown.output
    promoted = cli.invoke(models_app, ["promote", ANOMALY_MODEL, run.registered.version, "--reason", "test"])
    assert promoted.exit_code == 0
    missing = cli.invoke(models_app, ["show", ANOMALY_MODEL, "99"])
    assert missing.exit_code == 2
    day = list_partitions(root.tables, "module_features")[0]
    scored = cli.invoke(models_app, ["score", "--model", "anomaly", "--day", day, "--root", str(root.root)])
    assert scored.exit_code == 0 and f"anomaly {day}:" in scored.output, scored.output
    assert set(read_partition(root.tables, "anomaly_scores", day)["model_version"]) == {run.registered.version}
