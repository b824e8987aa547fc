"""The drift report: PSI per feature between the champion's window and the last days, none
for windows too small to read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from models.drift import MIN_ROWS, drift_report
from sensorfleet.config import Paths
from sensorfleet.features.daily import MODULE_FEATURES_TABLE
from sensorfleet.tables import write_partition

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _write(paths: Paths, per_day: int, shift_last_week: float) -> None:
    rng = np.random.default_rng(0)
    for d in range(21):
        when = T0 + timedelta(days=d, hours=12)
        scale = shift_last_week if d >= 14 else 1.0
        rows = [dict.fromkeys(MODULE_FEATURES_TABLE.column_names) | {
            "module_id": f"M{d}-{i}", "feature_time": when, "written_at": when,
            "module_emva__dark_current_e_per_s": float(rng.lognormal(0, 0.2)) * scale,
            "module_emva__read_noise_e": float(rng.normal(2.5, 0.2)),
        } for i in range(per_day)]
        write_partition(paths.tables, "module_features", str(when.date()),
                        pl.DataFrame(rows, schema=MODULE_FEATURES_TABLE.polars_schema()))


def test_drift_sees_the_moved_feature_and_not_the_stable_one(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, landing=tmp_path / "landing")
    _write(paths, per_day=40, shift_last_week=3.0)
    report = dict(drift_report(paths, days=7).select("feature", "psi").iter_rows())
    assert report["module_emva__dark_current_e_per_s"] > 1.0
    assert report["module_emva__read_noise_e"] < 0.1


def test_small_windows_report_no_psi(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path, landing=tmp_path / "landing")
    _write(paths, per_day=MIN_ROWS // 10, shift_last_week=3.0)  # 70 rows in the last week
    report = drift_report(paths, days=7)
    assert report.filter(pl.col("feature") == "module_emva__dark_current_e_per_s")["psi"].to_list() == [None]
