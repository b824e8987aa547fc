"""Round trip: simulate modules with known EMVA parameters and defects, recover them."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from emva_helpers import (
    NO_DEFECTS,
    linear_camera,
    match_blemishes,
    match_defects,
    render_session,
    truth_blemishes,
    truth_count,
    truth_pixels,
)

from sensorfleet.emva import CharacterizationConfig, characterize_frames


def rel(a: object, b: float) -> float:
    return abs(float(a) / b - 1.0)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mono() -> tuple:
    params = linear_camera(192, 144)
    frames, manifest, truth = render_session(params, seed=11)
    return frames, manifest, (params, truth), characterize_frames(frames, manifest, None)


def test_mono_metrics_recovered(mono: tuple) -> None:
    _frames, _m, (p, truth), res = mono
    s = res.module_stats
    dsnu_e, prnu_pct = truth.summary["dsnu_e"], truth.summary["prnu_pixel_pct"]  # as realized
    assert rel(s["gain_k_dn_per_e"], p.system_gain_dn_per_e) < 0.01
    assert rel(s["read_noise_e"], p.read_noise_e) < 0.03
    assert rel(s["read_noise_dn"], p.read_noise_e * p.system_gain_dn_per_e) < 0.03
    assert rel(s["dark_current_e_per_s"], p.dark_current_e_per_s) < 0.03
    assert rel(s["dsnu_e"], dsnu_e) < 0.05
    assert rel(s["prnu_pct"], prnu_pct) < 0.05
    assert rel(s["dark_offset_dn"], p.black_level_dn) < 0.01
    # the uncorrected PRNU carries the lens shading; it must be clearly larger
    assert float(s["prnu_uncorrected_pct"]) > 1.5 * prnu_pct  # type: ignore[arg-type]
    assert s["ptc_fit_r2"] > 0.999  # type: ignore[operator]
    # saturation: the point of max variance, just under full well
    assert 0.85 < float(s["saturation_capacity_e"]) / p.full_well_e < 1.0  # type: ignore[arg-type]
    assert abs(float(s["shading_corner_ratio"]) - p.shading_corner_rel) < 0.02  # type: ignore[arg-type]
    centre_offset_px = math.hypot(truth.summary["shading_center_x_px"] - (p.width - 1) / 2,
                                  truth.summary["shading_center_y_px"] - (p.height - 1) / 2)
    assert float(s["shading_center_offset_px"]) == pytest.approx(centre_offset_px, abs=3.0)  # type: ignore[arg-type]
    assert float(s["linearity_error_pct"]) < 0.5  # type: ignore[arg-type]
    assert 20 * math.log10(float(s["saturation_capacity_e"]) / float(s["absolute_sensitivity_threshold_e"])) == pytest.approx(  # type: ignore[arg-type]
        float(s["dynamic_range_db"]), rel=1e-9  # type: ignore[arg-type]
    )


def test_mono_defects_recovered(mono: tuple) -> None:
    _frames, _m, (_p, truth), res = mono
    scores = match_defects(truth_pixels(truth), res.defects, ["hot", "warm", "dead", "stuck", "noisy", "cluster", "bad_column", "bad_row"])
    for cls, (recall, precision) in scores.items():
        assert recall >= 0.99, (cls, recall)
        assert precision >= 0.99, (cls, precision)
    recall, precision = match_blemishes(truth_blemishes(truth), res.defects)
    assert recall >= 0.95 and precision >= 0.95
    s = res.module_stats
    assert s["bad_columns"] == truth_count(truth, "bad_column") == 1
    assert s["bad_rows"] == truth_count(truth, "bad_row") == 1
    assert s["cluster_count"] == truth_count(truth, "cluster")
    assert s["blemish_count"] == truth_count(truth, "blemish") == 2
    assert set(res.defects.columns) >= {"session_id", "module_id", "x", "y", "channel", "defect_class", "value", "value_unit"}


def test_cfa_channels() -> None:
    p = linear_camera(160, 128, cfa_pattern="RGGB", quantum_efficiency_r=0.45, quantum_efficiency_g=0.62,
                      quantum_efficiency_b=0.5)
    p = replace(p, defects=replace(p.defects, blemishes=1))
    frames, manifest, truth = render_session(p, seed=5)
    res = characterize_frames(frames, manifest, None)
    rows = {r["channel"]: r for r in res.channel_stats}
    assert sorted(rows) == ["B", "Gb", "Gr", "R"]
    # relative QE per channel (the light is shaded, so compare ratios), K per channel
    resp = {c: float(rows[c]["responsivity_dn_per_photon"]) for c in rows}  # type: ignore[arg-type]
    assert resp["R"] / resp["Gr"] == pytest.approx(0.45 / 0.62, rel=0.01)
    assert resp["B"] / resp["Gb"] == pytest.approx(0.5 / 0.62, rel=0.01)
    for c in rows:
        assert float(rows[c]["quantum_efficiency"]) / resp[c] == pytest.approx(1 / p.system_gain_dn_per_e, rel=0.02)  # type: ignore[arg-type]
    dsnu_e, prnu_pct = truth.summary["dsnu_e"], truth.summary["prnu_pixel_pct"]  # as realized
    for c in rows:
        assert rel(rows[c]["gain_k_dn_per_e"], p.system_gain_dn_per_e) < 0.02
        assert rel(rows[c]["prnu_pct"], prnu_pct) < 0.1
        assert rel(rows[c]["dsnu_e"], dsnu_e) < 0.1
    assert rel(res.module_stats["gain_k_dn_per_e"], p.system_gain_dn_per_e) < 0.01
    assert rel(res.module_stats["prnu_pct"], prnu_pct) < 0.05
    scores = match_defects(truth_pixels(truth), res.defects, ["hot", "dead", "stuck", "cluster", "bad_column"])
    assert all(r >= 0.99 and pr >= 0.99 for r, pr in scores.values()), scores
    assert set(res.defects["channel"].unique()) <= {"R", "Gr", "Gb", "B"}


def test_band_and_block_size_do_not_change_results(mono: tuple) -> None:
    frames, manifest, _truth, res = mono
    small = characterize_frames(frames, manifest, None, CharacterizationConfig(band_rows=7, max_block_bytes=1))
    for k, v in res.module_stats.items():
        if isinstance(v, float) and math.isfinite(v):
            assert small.module_stats[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
        else:
            assert small.module_stats[k] == v or (isinstance(v, float) and math.isnan(v)), k
    assert small.defects.sort("y", "x").equals(res.defects.sort("y", "x"))


def test_single_dark_exposure_gives_no_dark_current(tmp_path: Path) -> None:
    """No dark current from one dark exposure time: null in the row, and still null when the day's
    table is rebuilt from the maps group (JSON null is NaN for the other metrics)."""
    from sensorfleet.emva.mapsgroup import load_session_rows

    p = linear_camera(96, 64)
    p = replace(p, defects=replace(p.defects, hot=0, warm=0, clusters=0, blemishes=0))
    frames, manifest, _truth = render_session(p, seed=2, dark_exposures_s=(0.01,))
    res = characterize_frames(frames, manifest, tmp_path / "maps.zarr")
    assert res.module_stats["dark_current_dn_per_s"] is None and res.module_stats["dark_current_e_per_s"] is None
    stored = load_session_rows(tmp_path / "maps.zarr").module_stats
    assert stored["dark_current_dn_per_s"] is None and stored["dark_current_e_per_s"] is None
    assert rel(res.module_stats["gain_k_dn_per_e"], p.system_gain_dn_per_e) < 0.02


def test_shape_mismatch_names_session() -> None:
    frames, manifest, _ = render_session(linear_camera(64, 48, defects=NO_DEFECTS), seed=1)
    with pytest.raises(ValueError, match="sim-1.*expected shape"):
        characterize_frames(frames[:, :, :-1], manifest, None)
    with pytest.raises(ValueError, match="uint16"):
        characterize_frames(frames.astype(np.int32), manifest, None)
