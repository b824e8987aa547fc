"""Round trip: simulate modules with known EMVA parameters and defects, recover them."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from emva_helpers import match_blemishes, match_defects
from emva_sim import SimParams, simulate

from sensorfleet.emva import CharacterizationConfig, characterize_frames


def rel(a: object, b: float) -> float:
    return abs(float(a) / b - 1.0)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mono() -> tuple:
    frames, manifest, truth = simulate(SimParams(width=192, height=144), seed=11)
    return frames, manifest, truth, characterize_frames(frames, manifest, None)


def test_mono_metrics_recovered(mono: tuple) -> None:
    _frames, _m, truth, res = mono
    p = truth.params
    s = res.module_stats
    assert rel(s["gain_k_dn_per_e"], p.gain_k_dn_per_e) < 0.01
    assert rel(s["read_noise_e"], p.read_noise_e) < 0.03
    assert rel(s["read_noise_dn"], p.read_noise_e * p.gain_k_dn_per_e) < 0.03
    assert rel(s["dark_current_e_per_s"], p.dark_current_e_per_s) < 0.03
    assert rel(s["dsnu_e"], p.dsnu_e) < 0.05
    assert rel(s["prnu_pct"], p.prnu_pct) < 0.05
    assert rel(s["dark_offset_dn"], p.black_level_dn) < 0.01
    # the uncorrected PRNU carries the lens shading; it must be clearly larger
    assert float(s["prnu_uncorrected_pct"]) > 1.5 * p.prnu_pct  # type: ignore[arg-type]
    assert s["ptc_fit_r2"] > 0.999  # type: ignore[operator]
    # saturation: the point of max variance, just under full well
    assert 0.85 < float(s["saturation_capacity_e"]) / p.full_well_e < 1.0  # type: ignore[arg-type]
    assert abs(float(s["shading_corner_ratio"]) - p.shading_corner) < 0.02  # type: ignore[arg-type]
    assert float(s["shading_center_offset_px"]) == pytest.approx(math.hypot(p.shading_dx_px, p.shading_dy_px), abs=3.0)  # type: ignore[arg-type]
    assert float(s["linearity_error_pct"]) < 0.5  # type: ignore[arg-type]
    assert 20 * math.log10(float(s["saturation_capacity_e"]) / float(s["absolute_sensitivity_threshold_e"])) == pytest.approx(  # type: ignore[arg-type]
        float(s["dynamic_range_db"]), rel=1e-9  # type: ignore[arg-type]
    )


def test_mono_defects_recovered(mono: tuple) -> None:
    _frames, _m, truth, res = mono
    scores = match_defects(truth.defects, res.defects, ["hot", "warm", "dead", "stuck", "noisy", "cluster", "bad_column", "bad_row"])
    for cls, (recall, precision) in scores.items():
        assert recall >= 0.99, (cls, recall)
        assert precision >= 0.99, (cls, precision)
    recall, precision = match_blemishes(truth.blemishes, res.defects)
    assert recall >= 0.95 and precision >= 0.95
    s = res.module_stats
    assert s["bad_columns"] == truth.params.bad_columns and s["bad_rows"] == truth.params.bad_rows
    assert s["cluster_count"] == truth.params.clusters
    assert s["blemish_count"] == truth.params.blemishes
    assert set(res.defects.columns) >= {"session_id", "module_id", "x", "y", "channel", "defect_class", "value", "value_unit"}


def test_cfa_channels() -> None:
    p = SimParams(width=160, height=128, cfa_pattern="RGGB", qe=(0.45, 0.62, 0.6, 0.5), blemishes=1)
    frames, manifest, truth = simulate(p, seed=5)
    res = characterize_frames(frames, manifest, None)
    rows = {r["channel"]: r for r in res.channel_stats}
    assert sorted(rows) == ["B", "Gb", "Gr", "R"]
    # relative QE per channel (the light is shaded, so compare ratios), K per channel
    resp = {c: float(rows[c]["responsivity_dn_per_photon"]) for c in rows}  # type: ignore[arg-type]
    assert resp["R"] / resp["Gr"] == pytest.approx(0.45 / 0.62, rel=0.01)
    assert resp["B"] / resp["Gb"] == pytest.approx(0.5 / 0.6, rel=0.01)
    for c in rows:
        assert float(rows[c]["quantum_efficiency"]) / resp[c] == pytest.approx(1 / p.gain_k_dn_per_e, rel=0.02)  # type: ignore[arg-type]
    for c in rows:
        assert rel(rows[c]["gain_k_dn_per_e"], p.gain_k_dn_per_e) < 0.02
        assert rel(rows[c]["prnu_pct"], p.prnu_pct) < 0.1
        assert rel(rows[c]["dsnu_e"], p.dsnu_e) < 0.1
    assert rel(res.module_stats["gain_k_dn_per_e"], p.gain_k_dn_per_e) < 0.01
    assert rel(res.module_stats["prnu_pct"], p.prnu_pct) < 0.05
    scores = match_defects(truth.defects, res.defects, ["hot", "dead", "stuck", "cluster", "bad_column"])
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


def test_single_dark_exposure_gives_no_dark_current() -> None:
    p = SimParams(width=96, height=64, dark_exposures_s=(0.01,), hot=0, warm=0, clusters=0, blemishes=0)
    frames, manifest, truth = simulate(p, seed=2)
    res = characterize_frames(frames, manifest, None)
    assert math.isnan(float(res.module_stats["dark_current_dn_per_s"]))  # type: ignore[arg-type]
    assert rel(res.module_stats["gain_k_dn_per_e"], p.gain_k_dn_per_e) < 0.02


def test_shape_mismatch_names_session() -> None:
    frames, manifest, _ = simulate(replace(SimParams(width=64, height=48), hot=0, warm=0, dead=0, stuck=0, noisy=0, clusters=0, bad_columns=0, bad_rows=0, blemishes=0), seed=1)
    with pytest.raises(ValueError, match="sim-1.*expected shape"):
        characterize_frames(frames[:, :, :-1], manifest, None)
    with pytest.raises(ValueError, match="uint16"):
        characterize_frames(frames.astype(np.int32), manifest, None)
