"""The fleet: structure, fault and yield fractions, determinism, the landing contract on disk."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from sensorfleet import rawio
from sensorfleet.cli import app
from sensorfleet.manifest import PIXEL_FORMATS, load_manifest
from sensorfleet.synth.fleet import FAULT_CLASSES, FleetConfig, plan_fleet
from sensorfleet.synth.physics import build_maps, module_rng, render_frame
from sensorfleet.synth.writer import capture_plan_for, generate_fleet


@pytest.mark.parametrize(("fault_fraction", "target_yield"), [(0.05, 0.90), (0.12, 0.85)])
def test_fault_and_yield_fractions_match_what_was_asked(fault_fraction: float, target_yield: float) -> None:
    n = 400
    plans = plan_fleet(FleetConfig(modules=n, seed=4, width=64, height=48, fault_fraction=fault_fraction,
                                   target_yield=target_yield))
    faults = Counter(p.fault_class for p in plans if p.fault_class)
    assert sum(faults.values()) == round(fault_fraction * n)
    assert set(faults) == set(FAULT_CLASSES)
    assert max(faults.values()) - min(faults.values()) <= 1
    assert sum(p.passed for p in plans) == round(target_yield * n)
    assert all((p.fail_bin is None) == p.passed for p in plans)
    # faults mostly fail, through the bin their physics points at; the hidden cause fails some healthy ones
    faulty_failed = sum(not p.passed for p in plans if p.fault_class)
    assert faulty_failed >= 0.8 * sum(faults.values())
    bins = Counter(p.fail_bin for p in plans if p.fault_class == "high_dark_current")
    assert bins["dark_current"] >= 0.6 * faults["high_dark_current"]
    assert any(p.fail_bin == "functional" and p.fault_class is None for p in plans)


def test_fleet_structure_dates_and_conditions() -> None:
    config = FleetConfig(modules=300, seed=9, width=64, height=48)
    plans = plan_fleet(config)
    assert len({p.module_id for p in plans}) == len({p.session_id for p in plans}) == 300
    dies = Counter((p.lot_id, p.wafer_id, p.die_x, p.die_y) for p in plans)
    assert max(dies.values()) == 1  # a die is one module
    assert len({p.lot_id for p in plans}) >= 3 and len({p.station_id for p in plans}) == config.stations
    times = sorted(p.captured_at for p in plans)
    assert timedelta(days=14) < times[-1] - times[0] <= timedelta(days=config.span_days)
    assert all(p.captured_at.utcoffset() == timedelta(0) for p in plans)
    assert all(timedelta(days=1) <= p.tested_at - p.captured_at <= timedelta(days=10) for p in plans)
    temps = [p.params.temperature_c for p in plans]
    assert min(temps) >= 25 and max(temps) <= 45 and np.std(temps) > 2
    # parameters drift by lot and with die radius: edge dies have more dark current
    healthy = [p for p in plans if p.fault_class is None]
    edge = [p.params.dark_current_25c_e_per_s for p in healthy if p.die_radius_frac > 0.8]
    centre = [p.params.dark_current_25c_e_per_s for p in healthy if p.die_radius_frac < 0.4]
    assert np.median(edge) > 1.2 * np.median(centre)
    by_lot: dict[str, list[float]] = {}
    for p in healthy:
        by_lot.setdefault(p.lot_id, []).append(p.params.system_gain_dn_per_e)
    lot_means = [np.mean(v) for v in by_lot.values()]
    assert np.std(lot_means) > 0.004  # lots differ (2 % of 0.4 DN/e-) beyond module scatter


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".parquet"}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    config = FleetConfig(modules=4, seed=13, width=40, height=30, workers=1)
    a = generate_fleet(config, tmp_path / "a" / "landing", tmp_path / "a" / "truth")
    b = generate_fleet(FleetConfig(modules=4, seed=13, width=40, height=30, workers=2),
                       tmp_path / "b" / "landing", tmp_path / "b" / "truth")
    digest_a, digest_b = _tree_digest(a.landing), _tree_digest(b.landing)
    assert len(digest_a) == 4 * (len(capture_plan_for(config)) + 1)
    assert digest_a == digest_b
    for name in ("modules.parquet", "defects.parquet"):
        assert pl.read_parquet(a.truth / name).equals(pl.read_parquet(b.truth / name))
    assert pl.read_parquet(a.final_test).equals(pl.read_parquet(b.final_test))
    c = generate_fleet(FleetConfig(modules=4, seed=14, width=40, height=30, workers=1),
                       tmp_path / "c" / "landing", tmp_path / "c" / "truth")
    assert set(_tree_digest(c.landing).values()).isdisjoint(digest_a.values())


@pytest.mark.parametrize("pixel_format", PIXEL_FORMATS)
def test_every_format_writes_the_simulated_frames(tmp_path: Path, pixel_format: str) -> None:
    """Every file a manifest names exists with the exact size of its format and decodes to the
    very frame the simulator renders (odd width: packed rows are padded)."""
    config = FleetConfig(modules=2, seed=3, width=37, height=11, pixel_format=pixel_format, workers=1)
    summary = generate_fleet(config, tmp_path / "landing", tmp_path / "truth")
    plans = {p.session_id: p for p in plan_fleet(config)}
    for session_id in summary.session_ids:
        folder = summary.landing / session_id
        manifest = load_manifest(folder)
        assert manifest.pixel_format == pixel_format and manifest.sensor.bit_depth == config.resolved_bit_depth
        module = plans[session_id]
        rng, key = module_rng((config.seed, module.index))
        capture = capture_plan_for(config)
        maps = build_maps(module.params, rng, capture.ptc_exposure_s)
        assert sorted(p.name for p in folder.iterdir()) == sorted([f.file for f in manifest.frames] + ["manifest.json"])
        for index, entry in enumerate(manifest.frames):
            path = folder / entry.file
            size = rawio.expected_nbytes(pixel_format, config.width, config.height)
            if size is not None:
                assert path.stat().st_size == size
            frame = rawio.read_frame(path, pixel_format, config.width, config.height)
            planned = capture.frames[index]
            assert (entry.kind, entry.exposure_s, entry.photons_per_pixel) == (
                planned.kind, planned.exposure_s, planned.photons_per_pixel)
            expected = render_frame(module.params, maps, planned, index, key)
            np.testing.assert_array_equal(frame, expected)
            assert int(frame.max()) < 2**config.resolved_bit_depth


def test_manifests_final_test_and_truth_tables(tmp_path: Path) -> None:
    config = FleetConfig(modules=12, seed=5, width=64, height=48, fault_fraction=0.25, workers=2)
    summary = generate_fleet(config, tmp_path / "landing", tmp_path / "truth")
    assert summary.modules == 12 and summary.frames == 12 * len(capture_plan_for(config))
    assert not [p for p in summary.landing.iterdir() if p.name.startswith(".")]  # no staging left
    for session_id in summary.session_ids:
        manifest = load_manifest(summary.landing / session_id)
        points = manifest.operating_points()
        assert all(len(ix) >= 2 for ix in points.values())
        flats = {e for k, e, _ in points if k == "flat"}
        darks = {e for k, e, _ in points if k == "dark"}
        assert flats <= darks and len(darks) >= 4
        assert len({p for k, _, p in points if k == "flat"}) >= 12
        for frame in manifest.frames:
            size = rawio.expected_nbytes(manifest.pixel_format, manifest.sensor.width, manifest.sensor.height)
            assert (summary.landing / session_id / frame.file).stat().st_size == size
    final = pl.read_parquet(summary.final_test)
    assert dict(final.schema) == {"module_id": pl.String, "tested_at": pl.Datetime("us", "UTC"),
                                  "passed": pl.Boolean, "fail_bin": pl.String}
    assert final.filter(pl.col("passed"))["fail_bin"].null_count() == final["passed"].sum()
    modules = pl.read_parquet(summary.truth / "modules.parquet")
    assert modules.height == 12 and modules["fault_class"].drop_nulls().len() == 3
    for column in ("module_id", "session_id", "lot", "wafer", "die_x", "die_y", "station", "fault_class",
                   "system_gain_dn_per_e", "quantum_efficiency_R", "quantum_efficiency_G", "quantum_efficiency_B",
                   "read_noise_e", "dark_current_e_per_s", "dark_offset_dn", "dsnu_e", "prnu_pct",
                   "full_well_e", "passed", "fail_bin", "tested_at"):
        assert column in modules.columns
    joined = modules.join(final, on="module_id", suffix="_ft")
    assert joined["passed"].equals(joined["passed_ft"])
    defects = pl.read_parquet(summary.truth / "defects.parquet")
    assert set(defects["session_id"].unique()) <= set(summary.session_ids)
    assert defects.filter(pl.col("class") == "blemish")["radius_px"].null_count() == 0


def test_refuses_to_overwrite_and_cli_runs(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    runner = CliRunner()
    args = ["synth", "--modules", "3", "--out", str(landing), "--seed", "2", "--width", "32", "--height", "24",
            "--format", "raw10_mipi", "--cfa", "mono", "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "truth" / "modules.parquet").exists()
    before = _tree_digest(landing)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.output
    assert _tree_digest(landing) == before
    # a different seed adds its sessions beside the others and appends to the truth
    result = runner.invoke(app, [*args[:6], "3", *args[7:]])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(tmp_path / "truth" / "modules.parquet").height == 6
    bad = runner.invoke(app, ["synth", "--modules", "1", "--out", str(landing), "--format", "raw8",
                              "--bit-depth", "12"])
    assert bad.exit_code != 0 and "bit_depth 12 does not fit" in bad.output
