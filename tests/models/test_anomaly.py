"""The detector ensemble on Gaussian data with planted anomalies: score meaning, threshold,
explanations, determinism and batch independence."""

from __future__ import annotations

import numpy as np
import pytest

from models.anomaly import AnomalyConfig, fit_anomaly, robust_scale

NAMES = [f"v__f{i}" for i in range(8)]


def normal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, (n, 8))
    x[:, 7] = (rng.random(n) < 0.05).astype(float)  # a defect count: mostly 0, IQR 0
    return x


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return fit_anomaly(normal(600, 1), normal(2000, 2), NAMES, AnomalyConfig(seed=3))


def test_scores_are_fractions_and_the_threshold_holds_on_new_normal_data(model) -> None:  # type: ignore[no-untyped-def]
    fresh = model.score(normal(4000, 4))
    assert 0 <= fresh.min() and fresh.max() <= 1
    assert model.threshold == pytest.approx(0.99)
    assert (fresh > model.threshold).mean() == pytest.approx(0.01, abs=0.006)


def test_planted_anomalies_rank_high_and_name_their_feature(model) -> None:  # type: ignore[no-untyped-def]
    x = normal(30, 5)
    x[:10, 2] += 14  # 7 sigma on one feature
    x[10:20, 7] = 40  # many defects
    x[20, :7] += 30  # far out on every measurement
    score = model.score(x)
    # averaging ranks: a detector blind to a one-feature shift (the forest) holds the ensemble
    # near its 95th percentile; far out on many features the module is alarmed
    assert (score[:20] > 0.94).all() and score[20] > model.threshold and np.median(score[21:]) < 0.9
    top = model.explain(x)
    assert all(t.startswith("v__f2 (+") for t in top[:10]) and all(t.startswith("v__f7 (+") for t in top[10:20])
    assert len(top[0].split("; ")) == 3


def test_missing_values_count_as_the_median(model) -> None:  # type: ignore[no-untyped-def]
    x = np.full((1, 8), np.nan)
    assert model.score(x)[0] < 0.9


def test_a_module_scores_the_same_alone_and_in_a_batch_and_fits_are_seeded(model) -> None:  # type: ignore[no-untyped-def]
    x = normal(50, 6)
    assert np.array_equal(model.score(x[:1]), model.score(x)[:1])
    again = fit_anomaly(normal(600, 1), normal(2000, 2), NAMES, AnomalyConfig(seed=3))
    assert np.array_equal(again.score(x), model.score(x))


def test_robust_scale_falls_back_for_zero_iqr_and_unknown_detectors_are_refused() -> None:
    center, spread = robust_scale(np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 4.0], [0.0, 5.0], [1.0, 6.0]]))
    assert center[0] == 0 and spread[0] == pytest.approx(np.std([0, 0, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match="valid: iforest, knn, zmax, hbos"):
        AnomalyConfig(detectors=("lof",))
