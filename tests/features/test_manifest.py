"""Training sets with manifests: the same bytes from a rebuild, a refusal when a source changed."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sensorfleet.features import SourceChangedError, build_training_set, rebuild
from tests.features.conftest import at, session, write_rows


def _spine(path: Path) -> Path:
    pl.DataFrame({"module_id": ["M2", "M1", "M1"], "label_time": [at(5), at(5), at(1)], "y": [0, 1, 1]}).with_columns(
        pl.col("label_time").dt.replace_time_zone("UTC")).write_parquet(path)
    return path


def test_rebuild_gives_the_same_bytes_after_a_correction_and_refuses_changed_sources(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_rows(root, "module_stats", [session("M1", 0, 0.5, sid="a", dark_current_e_per_s=1.0),
                                      session("M2", 30, 30, sid="b", dark_current_e_per_s=2.0)])
    spine, out = _spine(tmp_path / "spine.parquet"), tmp_path / "set.parquet"
    manifest = build_training_set(spine, out, "yield_v1", None, root)
    recorded = json.loads(manifest.read_text())
    assert recorded["as_of_mode"] == "fixed" and recorded["service"]["name"] == "yield_v1"
    assert {s["table"] for s in recorded["sources"]} == {"module_stats"}
    assert pl.read_parquet(out).get_column("module_emva__dark_current_e_per_s").to_list() == [None, 1.0, 1.0]

    again = rebuild(manifest, tmp_path / "again.parquet")
    assert again.read_bytes() == out.read_bytes()

    # a partition added later is not read by the rebuild: the recorded SQL names its files
    write_rows(root, "module_stats", [session("M3", 100, 100, sid="c")])
    assert rebuild(manifest, tmp_path / "again2.parquet").read_bytes() == out.read_bytes()

    # a corrected re-run rewrites a recorded partition: refuse, naming the file
    write_rows(root, "module_stats", [session("M1", 0, 9, sid="a", dark_current_e_per_s=1.5)])
    with pytest.raises(SourceChangedError, match="capture_date=2026-03-01"):
        rebuild(manifest, tmp_path / "again3.parquet")


def test_label_mode_is_recorded(tmp_path: Path) -> None:
    write_rows(tmp_path, "module_stats", [session("M1", 0, 0.5)])
    manifest = build_training_set(_spine(tmp_path / "s.parquet"), tmp_path / "o.parquet", None, "label", tmp_path)
    recorded = json.loads(manifest.read_text())
    assert recorded["as_of_mode"] == "label" and recorded["as_of"] is None
    assert rebuild(manifest, tmp_path / "r.parquet").read_bytes() == (tmp_path / "o.parquet").read_bytes()
