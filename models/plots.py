"""Evaluation plots as matplotlib figures (logged to MLflow as PNG): ROC curves, calibration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    return fig, ax


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> Any:
    """ROC curves, one per ``label -> (y, score)``, with the chance diagonal."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = _figure()
    for label, (y, score) in curves.items():
        if 0 < int(np.sum(y)) < len(y):
            fpr, tpr, _ = roc_curve(y, score)
            ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, score):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false-alarm rate", ylabel="recall", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def calibration_figure(curves: Mapping[str, list[tuple[float, float, int]]], title: str) -> Any:
    """Reliability diagrams, one per ``label -> [(mean predicted, observed, count)]``."""
    fig, ax = _figure()
    for label, points in curves.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    ax.set(xlabel="predicted failure probability", ylabel="observed failure rate", title=title)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
