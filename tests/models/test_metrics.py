"""The evaluation measures on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import calibration_curve, chance_metrics, ranking_metrics, recall_at_escape_rate


def test_perfect_ranking_scores_one_everywhere() -> None:
    y = np.array([0] * 200 + [1] * 10)
    score = np.r_[np.linspace(0, 0.5, 200), np.linspace(0.9, 1.0, 10)]
    m = ranking_metrics(y, score, 0.01)
    assert m["roc_auc"] == m["pr_auc"] == m["f1_max"] == m["recall_at_far"] == 1.0
    assert (m["positives"], m["negatives"]) == (10, 200)


def test_recall_at_far_counts_only_positives_above_the_negatives_quantile() -> None:
    y = np.array([0] * 100 + [1] * 4)
    score = np.r_[np.arange(100) / 100, [0.995, 0.5, 0.2, 2.0]]  # 99th percentile of negatives: 0.99
    assert ranking_metrics(y, score, 0.01)["recall_at_far"] == 0.5


def test_one_class_gives_nan_not_an_error() -> None:
    m = ranking_metrics(np.zeros(5), np.arange(5.0))
    assert np.isnan(m["roc_auc"]) and m["positives"] == 0


def test_recall_at_escape_rate_keeps_the_largest_low_risk_prefix() -> None:
    # sorted by risk: 8 passes, then a failure, then 1 pass and 2 failures
    y = np.array([0] * 8 + [1, 0, 1, 1])
    p = np.arange(12) / 12
    recall, rejected, threshold = recall_at_escape_rate(y, p, escape_rate=0.12)
    # keeping 10 gives 1/10 = 0.10 escapes (<= 0.12); keeping 11 gives 2/11 = 0.18
    assert recall == pytest.approx(2 / 3) and rejected == pytest.approx(2 / 12) and threshold == p[9]


def test_calibration_curve_bins_and_chance_is_flat() -> None:
    p = np.array([0.05, 0.05, 0.95, 0.95])
    y = np.array([0, 0, 1, 0])
    assert calibration_curve(y, p, bins=10) == [(0.05, 0.0, 2), (0.95, 0.5, 2)]
    chance = chance_metrics(np.array([0, 0, 0, 1]), 0.25, 0.1)
    assert chance["roc_auc"] == 0.5 and chance["pr_auc"] == 0.25 and chance["brier"] == pytest.approx(0.1875)
