"""The optics step materialized after the captures step on a small fleet with edge charts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from asset_results import materialization_metadata
from dagster import DailyPartitionsDefinition, materialize

from assets.captures import build_capture_assets
from assets.optics import (
    CHECK_EDGES,
    CHECK_MTF50,
    build_optics_assets,
    edge_count_problems,
    mtf50_violations,
)
from assets.resources import StorageResource
from pipelines.partitions import FIRST_CAPTURE_DAY
from sensorfleet.synth.fleet import FleetConfig
from sensorfleet.synth.writer import generate_fleet

DAY = "2026-03-02"
# calendar days, as the other asset tests use (the deployment's dynamic partitions need an instance)
capture_days = DailyPartitionsDefinition(start_date=FIRST_CAPTURE_DAY, fmt="%Y-%m-%d")
PNG_MAGIC = b"\x89PNG"


def test_optics_materializes_tables_plots_and_checks(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate_fleet(FleetConfig(modules=2, seed=8, edge_charts=True, pixel_format="npy", workers=1,
                               start=datetime(2026, 3, 2, 6, tzinfo=UTC), span_days=0.2), landing, tmp_path / "truth")
    storage = StorageResource(root=str(tmp_path / "data"), landing=str(landing))
    result = materialize(
        [build_capture_assets(capture_days), build_optics_assets(capture_days)], partition_key=DAY,
        resources={"storage": storage},
        run_config={"ops": {"ingest_captures": {"config": {"workers": 1}},
                            "measure_optics": {"config": {"workers": 1, "min_edges": 36, "max_edges": 36}}}},
    )
    assert result.success
    module = materialization_metadata(result, "module_optics")
    assert module["sessions"] == 2 and module["sessions_with_chart"] == 2
    for key in ("worst_module_mtf50_field_map", "worst_module_sfr_curves"):
        payload = module[key].split("data:image/png;base64,", 1)[1].rstrip(")")
        assert base64.b64decode(payload).startswith(PNG_MAGIC)
        assert Path(module[f"{key}_png"]).read_bytes().startswith(PNG_MAGIC)
    sfr = materialization_metadata(result, "sfr")
    assert sfr["rows"] == 2 * 36 * 5 and sfr["by_quality"].get("ok", 0) >= 0.9 * 2 * 36 * 5
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[CHECK_EDGES].passed and checks[CHECK_MTF50].passed


def test_checks_name_the_bad_sessions() -> None:
    module = pl.DataFrame({"session_id": ["a", "b", "c"], "module_id": ["A", "B", "C"], "chart_frames": [4, 4, 0],
                           "edges_found": [36, 12, 0], "edges_ok": [36, 12, 0],
                           "mtf50_center_cy_per_px": [0.2, 0.7, None]})
    assert [r["session_id"] for r in edge_count_problems(module, 36, 36)] == ["b"]
    sfr = pl.DataFrame({"session_id": ["a"], "module_id": ["A"], "edge_id": [3], "channel": ["L"],
                        "mtf50_cy_per_px": [float("nan")]})
    bad = mtf50_violations(sfr, module)
    assert {(r["session_id"], r["column"]) for r in bad} == {("a", "mtf50_cy_per_px"), ("b", "mtf50_center_cy_per_px")}
