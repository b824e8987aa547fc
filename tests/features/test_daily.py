"""The materialized feature table: one point-in-time row per module and day, stable written_at,
null rates and drift against the previous week."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from sensorfleet.config import Paths
from sensorfleet.features import MODULE_FEATURES, feature_quality, materialize_module_features
from sensorfleet.tables import read_partition

from .conftest import T0, session, write_rows


def _fleet(root: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for day in range(8):
        shift = 3.0 if day == 7 else 1.0  # the last day's dark current moves
        for m in range(40):
            rows.append(session(f"M{day}-{m}", 24 * day + 10, 24 * day + 11,
                                dark_current_e_per_s=float(rng.lognormal(0, 0.2)) * shift,
                                read_noise_e=float(rng.normal(2.5, 0.2))))
    write_rows(root, "module_stats", rows)


def test_one_row_per_module_point_in_time_and_stable(tmp_path: Path) -> None:
    _fleet(tmp_path)
    paths = Paths(root=tmp_path, landing=tmp_path / "landing")
    day = str((T0 + timedelta(days=7)).date())
    first = materialize_module_features(paths, day)
    assert first.rewritten and first.rows == 40
    table = read_partition(paths.tables, MODULE_FEATURES, day)
    stats = read_partition(paths.tables, "module_stats", day)
    joined = table.join(stats, on="module_id")
    assert joined.height == 40
    assert (joined["module_emva__dark_current_e_per_s"] == joined["dark_current_e_per_s"]).all()
    assert table["feature_time"].dt.date().cast(pl.String).unique().to_list() == [day]
    again = materialize_module_features(paths, day)  # nothing changed: nothing rewritten
    assert not again.rewritten and read_partition(paths.tables, MODULE_FEATURES, day).equals(table)


def test_quality_sees_nulls_and_the_drifted_feature(tmp_path: Path) -> None:
    _fleet(tmp_path)
    paths = Paths(root=tmp_path, landing=tmp_path / "landing")
    days = [str((T0 + timedelta(days=d)).date()) for d in range(8)]
    for day in days:
        materialize_module_features(paths, day)
    quality = feature_quality(paths, days[-1])
    rates = dict(quality.null_rates.select("feature", "null_rate").iter_rows())
    assert rates["module_emva__dark_current_e_per_s"] == 0.0
    assert rates["channel_emva__prnu_pct_R"] == 1.0  # no channel rows were written
    psi = dict(quality.psi.select("feature", "psi").iter_rows())
    assert psi["module_emva__dark_current_e_per_s"] > 1.0  # 3x shift: far past 0.25
    assert psi["module_emva__read_noise_e"] < 0.25  # same distribution
    assert quality.psi.filter(pl.col("feature") == "module_emva__read_noise_e")["reference_rows"][0] == 7 * 40
