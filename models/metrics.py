"""Evaluation measures, each a pure function of labels and scores (higher score = more likely
positive): ROC-AUC, PR-AUC (average precision), best F1, recall at a false-alarm rate, Brier
score, calibration curve, recall of failures at an escape rate."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
)


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < len(y)


def ranking_metrics(y: np.ndarray, score: np.ndarray, false_alarm_rate: float = 0.01) -> dict[str, float]:
    """``roc_auc``, ``pr_auc``, ``f1_max``, ``recall_at_far`` (recall with the threshold at the
    ``1 - false_alarm_rate`` quantile of the negatives' scores), ``positives``, ``negatives``.
    NaN where a class is missing."""
    y = np.asarray(y, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    out = {"positives": float(y.sum()), "negatives": float(len(y) - y.sum())}
    if not _both_classes(y):
        return out | {"roc_auc": np.nan, "pr_auc": np.nan, "f1_max": np.nan, "recall_at_far": np.nan}
    precision, recall, _ = precision_recall_curve(y, score)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    cut = np.quantile(score[y == 0], 1 - false_alarm_rate, method="higher")
    return out | {
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "f1_max": float(f1.max()),
        "recall_at_far": float((score[y == 1] > cut).mean()),
    }


def calibration_curve(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted probability, observed frequency, count) per equal-width bin with rows."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    return [(float(p[which == b].mean()), float(y[which == b].mean()), int((which == b).sum()))
            for b in range(bins) if (which == b).any()]


def recall_at_escape_rate(y_fail: np.ndarray, p_fail: np.ndarray, escape_rate: float) -> tuple[float, float, float]:
    """(recall of failures, share of modules rejected, threshold) at the lowest rejection that keeps
    the escape rate (failures among the modules passed on, ``p_fail <= threshold``) at or below
    ``escape_rate``; rejecting everything if nothing else does."""
    y = np.asarray(y_fail, dtype=np.int64)
    p = np.asarray(p_fail, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    fails_kept = np.cumsum(y[order])  # failures among the k lowest-risk modules
    kept = np.arange(1, len(y) + 1)
    ok = np.flatnonzero(fails_kept / kept <= escape_rate)
    if len(ok) == 0 or y.sum() == 0:
        return (1.0 if y.sum() else np.nan), 1.0, -np.inf
    k = int(ok.max()) + 1  # keep the largest prefix that still meets the rate
    threshold = float(p[order][k - 1])
    recall = 1.0 - fails_kept[k - 1] / y.sum()
    return float(recall), float(1 - k / len(y)), threshold


def probability_metrics(y_fail: np.ndarray, p_fail: np.ndarray, escape_rate: float) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier score and recall at ``escape_rate`` of failure probabilities."""
    base = ranking_metrics(y_fail, p_fail)
    recall, rejected, _ = recall_at_escape_rate(y_fail, p_fail, escape_rate)
    return {"roc_auc": base["roc_auc"], "pr_auc": base["pr_auc"],
            "brier": float(brier_score_loss(y_fail, np.clip(p_fail, 0, 1))),
            "recall_at_escape": recall, "rejected_at_escape": rejected,
            "failures": base["positives"], "modules": float(len(y_fail))}


def chance_metrics(y_fail: np.ndarray, train_fail_rate: float, escape_rate: float) -> dict[str, float]:
    """What a model knowing only the training failure rate scores: every module the same."""
    y = np.asarray(y_fail, dtype=np.int64)
    p = np.full(len(y), train_fail_rate)
    out = probability_metrics(y, p, escape_rate)
    return out | {"roc_auc": 0.5, "pr_auc": float(y.mean())}


def per_bin_metrics(true_bins: np.ndarray, predicted_bins: np.ndarray) -> list[dict[str, float | str]]:
    """Per bin (every bin true or predicted, sorted): ``support`` (true count), ``predicted``
    (predicted count), ``precision`` (correct among predicted; NaN when never predicted) and
    ``recall`` (correct among true; NaN without a true member)."""
    true_bins, predicted_bins = np.asarray(true_bins, dtype=str), np.asarray(predicted_bins, dtype=str)
    rows: list[dict[str, float | str]] = []
    for name in sorted(set(true_bins) | set(predicted_bins)):
        is_true, is_pred = true_bins == name, predicted_bins == name
        hit = float((is_true & is_pred).sum())
        rows.append({"bin": name, "support": float(is_true.sum()), "predicted": float(is_pred.sum()),
                     "precision": hit / is_pred.sum() if is_pred.any() else float("nan"),
                     "recall": hit / is_true.sum() if is_true.any() else float("nan")})
    return rows
