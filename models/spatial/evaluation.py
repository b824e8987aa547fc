"""Evaluation against the synthetic fleet's truth: ROC-AUC of the score per fault class.

For each ``fault_class`` of ``truth/modules.parquet`` the AUC separates that class's modules from
the modules without a fault (``fault_class`` null), on the scored (held-out) modules only; it is
the Mann-Whitney probability that a faulty module outscores a normal one, ties counting 1/2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive score > a negative score) + P(tie) / 2; NaN when either set is empty."""
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    diff = np.asarray(positive, dtype=np.float64)[:, None] - np.asarray(negative, dtype=np.float64)[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def split_lots(truth_modules: pl.DataFrame, holdout_lots: int = 1) -> tuple[list[str], list[str]]:
    """(training, held-out) session ids: the last ``holdout_lots`` lots (by capture order) held
    out, so no lot contributes to both."""
    lots = truth_modules.sort("captured_at")["lot"].unique(maintain_order=True).to_list()
    if not 0 < holdout_lots < len(lots):
        raise ValueError(f"holdout_lots must be in 1..{len(lots) - 1} for {len(lots)} lots, found {holdout_lots}")
    held = set(lots[-holdout_lots:])
    train = truth_modules.filter(~pl.col("lot").is_in(held))["session_id"].to_list()
    test = truth_modules.filter(pl.col("lot").is_in(held))["session_id"].to_list()
    return train, test


def auc_by_fault_class(scores: pl.DataFrame, truth_modules: pl.DataFrame,
                       fault_classes: Sequence[str] | None = None) -> pl.DataFrame:
    """``fault_class, n_faulty, n_normal, roc_auc, alarm_rate`` for each fault class (all of the
    truth's when None) over the modules in ``scores`` (columns of ``score_sessions``)."""
    joined = scores.join(truth_modules.select("session_id", "fault_class"), on="session_id", how="inner")
    normal = joined.filter(pl.col("fault_class").is_null())
    classes = fault_classes or sorted(truth_modules["fault_class"].drop_nulls().unique().to_list())
    rows = []
    for name in classes:
        faulty = joined.filter(pl.col("fault_class") == name)
        rows.append({
            "fault_class": name, "n_faulty": faulty.height, "n_normal": normal.height,
            "roc_auc": roc_auc(faulty["error"].to_numpy(), normal["error"].to_numpy()),
            "alarm_rate": float(faulty["is_alarm"].mean()) if faulty.height else float("nan"),  # type: ignore[arg-type]
        })
    rows.append({"fault_class": "(none: false alarms)", "n_faulty": 0, "n_normal": normal.height,
                 "roc_auc": float("nan"),
                 "alarm_rate": float(normal["is_alarm"].mean()) if normal.height else float("nan")})  # type: ignore[arg-type]
    return pl.DataFrame(rows, schema={"fault_class": pl.String, "n_faulty": pl.Int64, "n_normal": pl.Int64,
                                      "roc_auc": pl.Float64, "alarm_rate": pl.Float64})
