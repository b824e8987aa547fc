"""Online lookup: latest values per module from the materialized store."""

from __future__ import annotations

from pathlib import Path

from sensorfleet.features import get_online_features, get_training_set, materialize_online
from tests.features.conftest import at, session, write_rows


def test_online_values_are_the_latest_and_match_a_training_set_at_the_same_instant(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 0, 0, dark_current_e_per_s=1.0),
                                          session("M1", 3, 3, dark_current_e_per_s=2.0),
                                          session("M2", 1, 1, dark_current_e_per_s=3.0),
                                          session("M3", 2, 50, dark_current_e_per_s=4.0)])
    materialize_online(tmp_path, now=at(10))  # M3's value was written after that instant
    got = get_online_features(["M2", "M9", "M1", "M3"], "yield_v1", tmp_path)
    assert got.get_column("module_id").to_list() == ["M2", "M9", "M1", "M3"]
    assert got.get_column("module_emva__dark_current_e_per_s").to_list() == [3.0, None, 2.0, None]

    import polars as pl
    spine = pl.DataFrame({"module_id": ["M2", "M9", "M1", "M3"], "label_time": [at(10)] * 4}).with_columns(
        pl.col("label_time").dt.replace_time_zone("UTC"))
    offline = get_training_set(spine, "yield_v1", at(10), tmp_path).drop("label_time")
    assert offline.equals(got)

    materialize_online(tmp_path, now=at(60))  # a replaced store is reloaded
    assert get_online_features(["M3"], "yield_v1", tmp_path).item(0, "module_emva__dark_current_e_per_s") == 4.0
