"""The characterization step materialized after the captures step on a tiny synthetic fleet."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import polars as pl
from asset_results import materialization_metadata
from dagster import DailyPartitionsDefinition, materialize

from assets.captures import build_capture_assets
from assets.characterization import (
    CHECK_BOUNDS,
    CHECK_PTC_FIT,
    build_characterization_assets,
    metric_violations,
    poor_ptc_fits,
    worst_session,
)
from assets.resources import StorageResource
from pipelines.partitions import FIRST_CAPTURE_DAY

DAY = "2026-03-02"
# The assets alone on calendar days (the location's days are dynamic and need an instance).
capture_days = DailyPartitionsDefinition(start_date=FIRST_CAPTURE_DAY, fmt="%Y-%m-%d")
PNG_MAGIC = b"\x89PNG"


def test_characterization_materializes_tables_plots_and_checks(tmp_path: Path, synth_landing: Path) -> None:
    storage = StorageResource(root=str(tmp_path / "data"), landing=str(synth_landing))
    result = materialize(
        [build_capture_assets(capture_days), build_characterization_assets(capture_days)],
        partition_key=DAY,
        resources={"storage": storage},
        run_config={
            "ops": {
                "ingest_captures": {"config": {"workers": 1}},
                "characterize_sessions": {"config": {"workers": 1}},
            }
        },
    )
    assert result.success
    stats = materialization_metadata(result, "module_stats")
    assert stats["sessions"] == 3 and stats["sessions_characterized"] == 3
    # the images: inline (base64 PNG inside markdown) and as files under the data root
    for key in ("worst_module_ptc", "worst_module_defect_map"):
        markdown = stats[key]
        payload = markdown.split("data:image/png;base64,", 1)[1].rstrip(")")
        assert base64.b64decode(payload).startswith(PNG_MAGIC)
        png_file = Path(stats[f"{key}_png"])
        assert png_file.is_file() and png_file.read_bytes().startswith(PNG_MAGIC)
        assert png_file.is_relative_to(tmp_path / "data" / "plots" / DAY)
    assert "| gain_k_dn_per_e | 3 |" in stats["metric_summary"]

    table = pl.read_parquet(tmp_path / "data" / "tables" / "module_stats")
    worst_module = table.filter(pl.col("session_id") == stats["worst_session"])["module_id"][0]
    assert f"worst module: {worst_module}" in stats["worst_module_ptc"]
    assert table.height == 3
    assert table["gain_k_dn_per_e"].is_between(0.01, 100).all()
    assert materialization_metadata(result, "module_channel_stats")["rows"] == 3 * 4  # RGGB: 4 channels per module
    assert materialization_metadata(result, "pixel_maps")["sessions"] == 3
    for asset, rows in (("module_stats", 3), ("module_channel_stats", 12)):  # the UI's row counts
        assert materialization_metadata(result, asset)["dagster/partition_row_count"] == rows
    assert materialization_metadata(result, "pixel_defects")["defective_pixels"] == pl.read_parquet(
        tmp_path / "data" / "tables" / "pixel_defects"
    ).height

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[CHECK_BOUNDS].passed, checks[CHECK_BOUNDS].metadata["details"].value
    assert checks[CHECK_PTC_FIT].passed, checks[CHECK_PTC_FIT].metadata["details"].value


def _stats(**overrides: list[Any]) -> pl.DataFrame:
    base: dict[str, list[Any]] = {
        "session_id": ["a", "b", "c"],
        "module_id": ["A", "B", "C"],
        "gain_k_dn_per_e": [0.5, 0.5, 0.5],
        "quantum_efficiency": [0.6, 0.6, 0.6],
        "read_noise_dn": [1.2, 1.2, 1.2],
        "ptc_fit_r2": [0.9995, 0.9995, 0.9995],
        "defect_pixels_total": [3, 9, 1],
        "shading_center_x_px": [1.0, 2.0, 3.0],
    }
    base.update(overrides)
    return pl.DataFrame(base)


def test_metric_violations_name_session_metric_and_bound() -> None:
    assert metric_violations(_stats()) == []
    bad = _stats(
        gain_k_dn_per_e=[0.5, 150.0, 0.5],
        quantum_efficiency=[1.2, 0.6, None],  # a null (no photons given) is allowed
        read_noise_dn=[1.2, 1.2, math.nan],
        shading_center_x_px=[1.0, math.inf, 3.0],  # not in the bounds table: finite only
    )
    found = {(v["session_id"], v["metric"]): v["problem"] for v in metric_violations(bad)}
    assert found == {
        ("b", "gain_k_dn_per_e"): "outside 0 < x < 100",
        ("a", "quantum_efficiency"): "outside 0 < x <= 1",
        ("c", "read_noise_dn"): "not finite",
        ("b", "shading_center_x_px"): "not finite",
    }


def test_poor_fit_and_worst_session() -> None:
    stats = _stats(ptc_fit_r2=[0.9995, 0.95, None])
    assert poor_ptc_fits(stats)["session_id"].to_list() == ["b", "c"]
    # no violations: the fit decides before the defect count
    assert worst_session(_stats(ptc_fit_r2=[0.9995, 0.9995, 0.95]), []) == "c"
    assert worst_session(_stats(), []) == "b"  # most defective pixels
    assert worst_session(_stats(), [{"session_id": "a"}]) == "a"
