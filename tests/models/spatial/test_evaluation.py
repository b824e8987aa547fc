from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.spatial.evaluation import auc_by_fault_class, roc_auc, split_lots


def test_roc_auc_is_the_mann_whitney_probability() -> None:
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([1.0, 2.0])) == pytest.approx(0.25)
    assert np.isnan(roc_auc(np.array([]), np.array([1.0])))


def test_split_lots_and_auc_by_class() -> None:
    truth = pl.DataFrame({
        "session_id": ["a", "b", "c", "d", "e", "f"], "lot": ["L1", "L1", "L2", "L2", "L2", "L2"],
        "captured_at": [1, 2, 3, 4, 5, 6], "fault_class": [None, "particle", None, "particle", "noisy", None],
    })
    train, test = split_lots(truth)
    assert train == ["a", "b"] and test == ["c", "d", "e", "f"]
    with pytest.raises(ValueError, match="1..1"):
        split_lots(truth, holdout_lots=2)
    scores = pl.DataFrame({"session_id": test, "error": [1.0, 5.0, 0.5, 2.0], "is_alarm": [False, True, False, False]})
    table = auc_by_fault_class(scores, truth)
    by = {r["fault_class"]: r for r in table.iter_rows(named=True)}
    assert by["particle"]["roc_auc"] == 1.0 and by["noisy"]["roc_auc"] == 0.0
    assert by["particle"]["alarm_rate"] == 1.0 and by["(none: false alarms)"]["alarm_rate"] == 0.0
