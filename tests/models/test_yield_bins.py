"""The failure-bin classifier and the per-bin measures, on data whose bin is known by
construction: each bin's failures sit in their own region of feature space."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import per_bin_metrics
from models.yield_model import PASS_BIN, UNKNOWN_FAIL_BIN, YieldConfig, fit_fail_bins, fit_yield


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """300 modules: x0 high -> `dark_current` failure, x1 high -> `optics` failure, else pass."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 3))
    bins = np.full(300, None, dtype=object)
    bins[x[:, 0] > 1.0] = "dark_current"
    bins[(x[:, 1] > 1.0) & (bins == None)] = "optics"  # noqa: E711
    passed = (bins == None).astype(np.int64)  # noqa: E711
    return x, passed, bins, np.repeat(np.arange(6), 50)


def test_predicted_bins_follow_the_failure_regions() -> None:
    x, passed, bins, lots = _data(0)
    config = YieldConfig(max_iter=40)
    model = fit_yield(x, passed, lots, ["a", "b", "c"], config)
    model.fail_threshold = 0.5
    fit_fail_bins(model, x[passed == 0], bins[passed == 0])
    assert set(model.fail_bins) == {"dark_current", "optics"} and model.bin_estimator is not None
    x_new, passed_new, bins_new, _ = _data(1)
    truth = np.where(passed_new == 1, PASS_BIN, bins_new)
    predicted = model.predict_bin(x_new)
    assert set(predicted) <= {PASS_BIN, "dark_current", "optics"}
    rows = {r["bin"]: r for r in per_bin_metrics(truth, predicted)}
    assert rows["dark_current"]["recall"] > 0.8 and rows["optics"]["recall"] > 0.8
    assert rows["dark_current"]["precision"] > 0.8 and rows[PASS_BIN]["recall"] > 0.9


def test_one_bin_or_none_among_the_failures() -> None:
    x, passed, bins, lots = _data(0)
    model = fit_yield(x, passed, lots, ["a", "b", "c"], YieldConfig(max_iter=20))
    model.fail_threshold = 0.5
    only = np.where(bins == None, None, "optics")  # noqa: E711
    fit_fail_bins(model, x[passed == 0], only[passed == 0])
    assert model.bin_estimator is None and set(model.predict_bin(x)) == {PASS_BIN, "optics"}
    fit_fail_bins(model, x[passed == 0], np.full(int((passed == 0).sum()), None, dtype=object))
    assert set(model.predict_bin(x)) == {PASS_BIN, UNKNOWN_FAIL_BIN}


def test_per_bin_metrics_count_hits() -> None:
    rows = {r["bin"]: r for r in per_bin_metrics(np.array(["pass", "optics", "optics", "pass"]),
                                                  np.array(["pass", "optics", "pass", "read_noise"]))}
    assert rows["optics"] == {"bin": "optics", "support": 2.0, "predicted": 1.0, "precision": 1.0, "recall": 0.5}
    assert rows["pass"]["precision"] == 0.5 and rows["pass"]["recall"] == 0.5
    assert rows["read_noise"]["precision"] == 0.0 and np.isnan(rows["read_noise"]["recall"])
    assert pytest.approx(sum(r["support"] for r in rows.values())) == 4
