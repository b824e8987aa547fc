"""Training runs: build the point-in-time training set, split by lot and time, fit, evaluate on
the held-out lots (against the synthetic truth where there is one), log and register in MLflow
and decide the alias. ``train_anomaly`` and ``train_yield`` are the functions the schedule calls.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from models.anomaly import AnomalyConfig, AnomalyModel, fit_anomaly
from models.data import (
    CEILING_EXTRA,
    NO_FAULT,
    TRUE_PARAMETERS,
    feature_columns,
    labelled_training_set,
    matrix,
    read_truth,
    spine_path,
    split_by_lot_and_time,
    truth_parameters,
)
from models.metrics import (
    calibration_curve,
    chance_metrics,
    per_bin_metrics,
    probability_metrics,
    ranking_metrics,
    recall_at_escape_rate,
)
from models.plots import calibration_figure, roc_figure
from models.tracking import Candidate, Registered, log_and_register
from models.yield_model import (
    PASS_BIN,
    UNKNOWN_FAIL_BIN,
    YieldConfig,
    YieldModel,
    fit_fail_bins,
    fit_yield,
    out_of_fold_pass,
)
from sensorfleet.config import Paths

ANOMALY_MODEL = "sensorfleet-anomaly"
YIELD_MODEL = "sensorfleet-yield"
ANOMALY_SERVICE = "default"
HOLDOUT = 0.3
TOLERANCE = 0.01
"""Promotion tolerance: a new version becomes champion unless its held-out ROC-AUC is more than
0.01 below the champion's on the same held-out lots (about the run-to-run spread of the AUC on a
few hundred held-out modules with a few dozen positives)."""


@dataclass(frozen=True)
class TrainingRun:
    """A finished training run: the registry outcome (None when not registered), the held-out
    metrics, and extra tables (per fault class, permutation importance)."""

    registered: Registered | None
    metrics: dict[str, float]
    details: dict[str, pl.DataFrame]
    model: Any


def _ratio(value: float, reference: float) -> float:
    """``value / reference``, NaN when the reference is not a positive number (a held-out set
    too small for the reference model to rank anything)."""
    return value / reference if np.isfinite(reference) and reference > 0 else float("nan")


def truth_or_none(paths: Paths) -> pl.DataFrame | None:
    """The synthetic truth of the fleet, None for a real fleet (evaluation falls back to final test)."""
    try:
        return read_truth(paths)
    except FileNotFoundError:
        return None


def _training_set(paths: Paths, service: str, model_name: str) -> tuple[pl.DataFrame, Path]:
    """The run's training set, spine and manifest under ``<root>/models/training_sets/<model>/<UTC
    time>/``: kept (not a temporary folder) so that the manifest's recorded paths stay valid and
    ``sensorfleet features rebuild`` can rebuild the set while its sources are unchanged."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = paths.root / "models" / "training_sets" / model_name / stamp
    return labelled_training_set(paths, service, folder / f"training_{service}.parquet")


def _spine(manifest: Path) -> Path:
    """The spine beside a training set's manifest (logged with it: a rebuild needs both)."""
    return spine_path(manifest.parent / manifest.name.removesuffix(".manifest.json"))


def anomaly_targets(test: pl.DataFrame, truth: pl.DataFrame | None) -> tuple[np.ndarray, list[str]]:
    """Positives of the held-out modules: the truth's fault class (``none`` negative) when there
    is a truth, else a failed final test; and the class name per row (``failed`` without truth)."""
    if truth is None:
        classes = ["failed" if not p else NO_FAULT for p in test["passed"].to_list()]
    else:
        joined = test.select("module_id").join(truth.select("module_id", "fault_class"), on="module_id", how="left", maintain_order="left")
        classes = [c or NO_FAULT for c in joined["fault_class"].to_list()]
    return np.array([c != NO_FAULT for c in classes], dtype=np.int64), classes


def ranking_report(y: np.ndarray, classes: list[str], strength: np.ndarray, alarm: np.ndarray,
                   false_alarm_rate: float) -> tuple[dict[str, float], pl.DataFrame]:
    """Overall metrics of an anomaly ``strength`` (higher = more anomalous) on held-out modules
    with targets ``y`` and the truth's class per row, and a per-class table (each class against
    the normal modules): ROC-AUC, PR-AUC, F1-max, recall at ``false_alarm_rate``; plus the alarm
    rate (``alarm``: the model's own threshold) on normal and on faulty held-out modules."""
    overall = ranking_metrics(y, strength, false_alarm_rate)
    overall["false_alarm_rate_heldout"] = float(alarm[y == 0].mean()) if (y == 0).any() else np.nan
    overall["recall_at_threshold"] = float(alarm[y == 1].mean()) if y.any() else np.nan
    cls = np.array(classes)
    rows = []
    for name in sorted(set(classes) - {NO_FAULT}):
        keep = (cls == name) | (cls == NO_FAULT)
        rows.append({"fault_class": name, **ranking_metrics((cls[keep] == name).astype(np.int64), strength[keep],
                                                            false_alarm_rate)})
    return overall, pl.DataFrame(rows)


def class_curves(y: np.ndarray, classes: list[str], strength: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ROC inputs for :func:`models.plots.roc_figure`: all faults, then each class against normal."""
    cls = np.array(classes)
    return {"all faults": (y, strength)} | {
        name: ((cls[(cls == name) | (cls == NO_FAULT)] == name).astype(np.int64),
               strength[(cls == name) | (cls == NO_FAULT)]) for name in sorted(set(classes) - {NO_FAULT})}


def per_class_metrics(per_class: pl.DataFrame) -> dict[str, float]:
    """``<class>_roc_auc`` and ``<class>_recall_at_far`` of a :func:`ranking_report` table."""
    return ({f"{r['fault_class']}_roc_auc": r["roc_auc"] for r in per_class.iter_rows(named=True)}
            | {f"{r['fault_class']}_recall_at_far": r["recall_at_far"] for r in per_class.iter_rows(named=True)})


def evaluate_anomaly(model: AnomalyModel, test: pl.DataFrame, truth: pl.DataFrame | None) -> tuple[dict[str, float], pl.DataFrame]:
    """:func:`ranking_report` of the model on held-out modules."""
    x = matrix(test, model.feature_names)
    score, strength = model.score(x), -model.log_exceedance(x)  # strength: the same order, no ties at 1
    y, classes = anomaly_targets(test, truth)
    return ranking_report(y, classes, strength, score > model.threshold, model.config.false_alarm_rate)


def train_anomaly(paths: Paths, config: AnomalyConfig = AnomalyConfig(), register: bool = True,
                  holdout: float = HOLDOUT, tolerance: float = TOLERANCE) -> TrainingRun:
    """Fit the detector ensemble on known-good modules (passed first final test) of the earlier
    training lots, calibrate on known-good modules of the later training lots, evaluate on the
    held-out (latest) lots; log, register and alias it."""
    with tempfile.TemporaryDirectory(prefix="anomaly-") as tmp:
        frame, manifest = _training_set(paths, ANOMALY_SERVICE, ANOMALY_MODEL)
        columns = [c for c in feature_columns(frame) if c.split("__")[0] in config.views]
        split = split_by_lot_and_time(frame, holdout)
        is_test = split.is_test(frame)
        train, test = frame.filter(~is_test), frame.filter(is_test)
        normal = train.filter(pl.col("passed"))
        inner = split_by_lot_and_time(normal, 0.3)
        fit_rows, cal_rows = normal.filter(~inner.is_test(normal)), normal.filter(inner.is_test(normal))
        model = fit_anomaly(matrix(fit_rows, columns), matrix(cal_rows, columns), columns, config)
        truth = truth_or_none(paths)
        overall, per_class = evaluate_anomaly(model, test, truth)
        metrics = {**overall, **per_class_metrics(per_class), "threshold": model.threshold, "fit_modules": float(fit_rows.height),
                   "calibration_modules": float(cal_rows.height), "test_modules": float(test.height)}
        registered = None
        if register:
            y, classes = anomaly_targets(test, truth)
            x_test = matrix(test, columns)
            curves = class_curves(y, classes, -model.log_exceedance(x_test))
            example = test.select(columns[:]).head(5).to_pandas()
            figure = roc_figure(curves, f"{ANOMALY_MODEL}: held-out lots")
            table = Path(tmp) / "per_fault_class.json"
            table.write_text(json.dumps(per_class.to_dicts(), indent=1))
            candidate = Candidate(
                name=ANOMALY_MODEL, model=model, metrics=metrics, primary="roc_auc",
                evaluate=lambda m: ranking_metrics(y, -m.log_exceedance(matrix(test, m.feature_names)))["roc_auc"],
                example=example, output=model.score(matrix(test.head(5), columns)),
                params={**asdict(config), "service": ANOMALY_SERVICE, "features": len(columns),
                        "train_lots": ",".join(split.train_lots), "test_lots": ",".join(split.test_lots),
                        "evaluated_against": "truth fault_class" if truth is not None else "final_test"},
                figures={"roc.png": figure}, artifacts=[manifest, _spine(manifest), table],
                tags={"threshold": f"{model.threshold:.6f}", "test_lots": ",".join(split.test_lots)})
            registered = log_and_register(candidate, paths.root, tolerance)
        return TrainingRun(registered, metrics, {"per_fault_class": per_class}, model)


def _oracle(train_truth: pl.DataFrame, test_truth: pl.DataFrame, config: YieldConfig,
            columns: tuple[str, ...]) -> np.ndarray:
    """Failure probabilities of the same pipeline given truth columns instead of the features."""
    model = fit_yield(matrix(train_truth, list(columns)), train_truth["passed"].cast(pl.Int64).to_numpy(),
                      train_truth["lot_id"].to_numpy(), columns, config)
    return 1.0 - model.probability_pass(matrix(test_truth, list(columns)))


def evaluate_bins(model: YieldModel, train: pl.DataFrame, x_train: np.ndarray, test: pl.DataFrame,
                  x_test: np.ndarray) -> tuple[dict[str, float], pl.DataFrame]:
    """Fit the failure-bin classifier on the training lots' failures, then compare the held-out
    modules' ``predicted_bin`` with their first final test's bin (``pass`` or the fail bin):
    per-bin precision and recall, overall bin accuracy, and the bin accuracy among the failures
    that were predicted to fail (the bin classifier's own share)."""
    failed = ~train["passed"].to_numpy()
    fit_fail_bins(model, x_train[failed], train["fail_bin"].to_numpy()[failed])
    true_bins = np.where(test["passed"].to_numpy(), PASS_BIN, test["fail_bin"].fill_null(UNKNOWN_FAIL_BIN).to_numpy())
    predicted = model.predict_bin(x_test)
    per_bin = pl.DataFrame(per_bin_metrics(true_bins, predicted))
    caught = (true_bins != PASS_BIN) & (predicted != PASS_BIN)
    metrics = {"bin_accuracy": float((true_bins == predicted).mean()),
               "failure_bin_accuracy": float((true_bins[caught] == predicted[caught]).mean()) if caught.any() else np.nan}
    for row in per_bin.iter_rows(named=True):
        metrics |= {f"bin_{row['bin']}_precision": row["precision"], f"bin_{row['bin']}_recall": row["recall"]}
    return metrics, per_bin


def train_yield(paths: Paths, config: YieldConfig = YieldConfig(), register: bool = True,
                holdout: float = HOLDOUT, tolerance: float = TOLERANCE) -> TrainingRun:
    """Fit the calibrated yield model on the training lots, set the failure threshold from
    out-of-fold (lot-grouped) training predictions at the escape rate, evaluate on the held-out
    lots beside chance and the oracle, compute permutation importance; log, register, alias."""
    with tempfile.TemporaryDirectory(prefix="yield-") as tmp:
        frame, manifest = _training_set(paths, config.service, YIELD_MODEL)
        columns = feature_columns(frame)
        split = split_by_lot_and_time(frame, holdout)
        is_test = split.is_test(frame)
        train, test = frame.filter(~is_test), frame.filter(is_test)
        x_train, x_test = matrix(train, columns), matrix(test, columns)
        y_train = train["passed"].cast(pl.Int64).to_numpy()
        lots = train["lot_id"].to_numpy()
        model = fit_yield(x_train, y_train, lots, columns, config)
        oof = out_of_fold_pass(x_train, y_train, lots, config)
        model.fail_threshold = recall_at_escape_rate(1 - y_train, 1 - oof, config.escape_rate)[2]
        p_fail = 1.0 - model.probability_pass(x_test)
        y_fail = 1 - test["passed"].cast(pl.Int64).to_numpy()
        metrics = probability_metrics(y_fail, p_fail, config.escape_rate)
        train_fail_rate = float(1 - y_train.mean())
        chance = chance_metrics(y_fail, train_fail_rate, config.escape_rate)
        out: dict[str, float] = dict(metrics) | {f"chance_{k}": v for k, v in chance.items()}
        oracle_p = None
        if (paths.truth / "modules.parquet").is_file():
            lot_of = frame.select("module_id", "lot_id", "passed")
            t = truth_parameters(paths).drop("passed", strict=False).join(lot_of, on="module_id", how="inner")
            t_train = t.filter(pl.col("lot_id").is_in(list(split.train_lots)))
            t_test = test.select("module_id").join(t, on="module_id", how="left", maintain_order="left")
            oracle_p = _oracle(t_train, t_test, config, TRUE_PARAMETERS)
            oracle = probability_metrics(y_fail, oracle_p, config.escape_rate)
            out |= {f"oracle_{k}": v for k, v in oracle.items()}
            out["roc_auc_vs_oracle"] = _ratio(metrics["roc_auc"], oracle["roc_auc"])
            ceiling = probability_metrics(y_fail, _oracle(t_train, t_test, config, TRUE_PARAMETERS + CEILING_EXTRA),
                                          config.escape_rate)
            out |= {f"ceiling_{k}": v for k, v in ceiling.items()}
            out["roc_auc_vs_ceiling"] = _ratio(metrics["roc_auc"], ceiling["roc_auc"])
        out |= {"fail_threshold": model.fail_threshold, "train_modules": float(train.height),
                "test_modules": float(test.height)}
        bin_metrics, per_bin = evaluate_bins(model, train, x_train, test, x_test)
        out |= bin_metrics
        with threadpool_limits(limits=1):
            importance = permutation_importance(model.estimator, x_test, 1 - y_fail, scoring="roc_auc", n_repeats=5,
                                                random_state=config.seed, n_jobs=1)
        ranked = pl.DataFrame({"feature": columns, "importance_mean": importance.importances_mean,
                               "importance_std": importance.importances_std}).sort("importance_mean", descending=True)
        registered = None
        if register:
            curves = {"model": (y_fail, p_fail)} | ({"oracle": (y_fail, oracle_p)} if oracle_p is not None else {})
            calib = {k: calibration_curve(y, p) for k, (y, p) in curves.items()}
            imp_file = Path(tmp) / "permutation_importance.json"
            imp_file.write_text(json.dumps(ranked.to_dicts(), indent=1))
            bin_file = Path(tmp) / "per_bin.json"
            bin_file.write_text(json.dumps(per_bin.to_dicts(), indent=1))
            candidate = Candidate(
                name=YIELD_MODEL, model=model, metrics=out, primary="roc_auc",
                evaluate=lambda m: ranking_metrics(y_fail, 1 - m.probability_pass(matrix(test, m.feature_names)))["roc_auc"],
                example=test.select(columns).head(5).to_pandas(), output=model.probability_pass(x_test[:5]),
                params={**asdict(config), "features": len(columns), "train_lots": ",".join(split.train_lots),
                        "test_lots": ",".join(split.test_lots)},
                figures={"roc.png": roc_figure(curves, f"{YIELD_MODEL}: failures, held-out lots"),
                         "calibration.png": calibration_figure(calib, f"{YIELD_MODEL}: calibration, held-out lots")},
                artifacts=[manifest, _spine(manifest), imp_file, bin_file],
                tags={"fail_threshold": f"{model.fail_threshold:.6f}", "test_lots": ",".join(split.test_lots)})
            registered = log_and_register(candidate, paths.root, tolerance)
        return TrainingRun(registered, out, {"permutation_importance": ranked, "per_bin": per_bin}, model)


def as_yield_model(obj: Any) -> YieldModel:
    """Narrow a loaded model to :class:`YieldModel` (an error names what was found)."""
    if not isinstance(obj, YieldModel):
        raise TypeError(f"expected a YieldModel, found {type(obj).__name__}")
    return obj
