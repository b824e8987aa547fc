"""Null rates and population stability index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from sensorfleet.features import null_rates, psi, psi_previous_days


def test_null_rates_count_nulls_and_nan() -> None:
    frame = pl.DataFrame({"id": [1, 2, 3, 4], "v__a": [1.0, None, float("nan"), 2.0], "v__b": ["x", None, "y", "z"]})
    got = null_rates(frame)
    assert got.get_column("feature").to_list() == ["v__a", "v__b"]
    assert got.get_column("null_rate").to_list() == [0.5, 0.25]


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(7)
    ref = pl.Series(rng.normal(0, 1, 20_000))
    same = psi(pl.Series(rng.normal(0, 1, 20_000)), ref)
    shifted = psi(pl.Series(rng.normal(0.5, 1, 20_000)), ref)
    assert same is not None and shifted is not None
    assert same < 0.01 and shifted > 0.2
    # against the closed form for two bins: p = (0.5, 0.5), q = (0.8, 0.2)
    two = psi(pl.Series([0.0] * 8 + [1.0] * 2), pl.Series([0.0] * 5 + [1.0] * 5), bins=2)
    assert two == pytest.approx(0.3 * np.log(0.8 / 0.5) + (-0.3) * np.log(0.2 / 0.5))
    assert psi(pl.Series([], dtype=pl.Float64), ref) is None


def test_psi_previous_days_takes_the_week_before() -> None:
    day = datetime(2026, 3, 10, tzinfo=UTC)
    times = [day - timedelta(days=d, hours=1) for d in range(7) for _ in range(50)] + [day + timedelta(hours=h % 24) for h in range(50)]
    vals = [float(i % 10) for i in range(350)] + [float(i % 10) for i in range(50)]
    frame = pl.DataFrame({"label_time": times, "f": vals})
    assert psi_previous_days(frame, "f", day) == pytest.approx(0.0, abs=1e-9)


def test_psi_of_float_columns_equals_psi_of_series_with_nulls_nans_and_missing_columns() -> None:
    from sensorfleet.features.quality import float_columns, psi_of_values

    rng = np.random.default_rng(3)
    cur = pl.DataFrame({"a": [1.0, None, float("nan"), 2.5, 3.0], "b": [1, 2, None, 4, 5]})
    ref = pl.DataFrame({"a": rng.normal(2, 1, 40), "b": rng.integers(0, 6, 40)})
    cur_np, ref_np = float_columns(cur, ["a", "b", "c"]), float_columns(ref, ["a", "b", "c"])
    assert cur_np.shape == (5, 3) and np.isnan(cur_np[:, 2]).all()
    for k, name in enumerate(["a", "b"]):
        assert psi_of_values(cur_np[:, k], ref_np[:, k]) == psi(cur[name], ref[name])
    assert psi_of_values(cur_np[:, 2], ref_np[:, 2]) is None  # a column neither side has
    assert float_columns(cur.head(0), ["a"]).shape == (0, 1)
    counted = null_rates(cur, ["a", "b"])
    assert counted["nulls"].to_list() == [2, 1] and counted["null_rate"].to_list() == [0.4, 0.2]
