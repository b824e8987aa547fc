"""Station events of the synthetic fleet: what they change (the station's light and die
temperature from a day on), what they leave alone (modules, labels, other stations), the truth."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from sensorfleet.cli import app
from sensorfleet.synth.fleet import FleetConfig, plan_fleet
from sensorfleet.synth.physics import build_maps, module_rng, render_frame
from sensorfleet.synth.plan import PlannedFrame
from sensorfleet.synth.stations import StationEvent, as_measured, parse_station_event

DIM = StationEvent("ST02", "light_dimming", date(2026, 3, 10), 0.05)
HOT = StationEvent("ST03", "temperature_excess", date(2026, 3, 12), 7.0)


def test_parse_and_refuse_bad_events() -> None:
    assert parse_station_event("ST02:light_dimming:2026-03-10:0.05") == DIM
    for text, words in [("ST02:light_dimming:2026-03-10", "expected STATION:KIND"),
                        ("ST02:lamp:2026-03-10:0.05", "valid: light_dimming, temperature_excess"),
                        ("ST02:light_dimming:10/03/2026:0.05", "not a date"),
                        ("ST02:light_dimming:2026-03-10:lots", "not a number"),
                        ("ST02:light_dimming:2026-03-10:1.5", "magnitude must be in (0, 0.9]")]:
        with pytest.raises(ValueError, match=None) as info:
            parse_station_event(text)
        assert words in str(info.value), (text, str(info.value))
    with pytest.raises(ValueError, match="unknown station.*ST09.*ST01, ST02, ST03, ST04"):
        FleetConfig(modules=4, station_events=(replace(DIM, station_id="ST09"),))


def test_events_change_only_the_station_from_its_day() -> None:
    clean = plan_fleet(FleetConfig(modules=300, seed=2))
    drift = plan_fleet(FleetConfig(modules=300, seed=2, station_events=(DIM, HOT)))
    assert [p.module_id for p in clean] == [p.module_id for p in drift]
    assert [p.fail_bin for p in clean] == [p.fail_bin for p in drift]  # the final test is elsewhere
    hit = {"ST02": 0, "ST03": 0}
    for a, b in zip(clean, drift, strict=True):
        day = a.captured_at.date()
        dim = a.station_id == "ST02" and day >= DIM.start_day
        hot = a.station_id == "ST03" and day >= HOT.start_day
        hit["ST02"] += dim
        hit["ST03"] += hot
        assert b.params.light_source_factor == (0.95 if dim else 1.0)
        assert b.params.temperature_excess_c == (7.0 if hot else 0.0)
        assert b.params.temperature_c == a.params.temperature_c  # recorded: what the manifest says
        assert b.params.dark_current_e_per_s == pytest.approx(a.params.dark_current_e_per_s * (2.0 if hot else 1.0))
        assert replace(b.params, light_source_factor=1.0, temperature_excess_c=0.0) == a.params
    assert min(hit.values()) > 10
    measured = as_measured(drift).join(as_measured(clean), on="session_id", suffix="_clean")
    ratio = measured.select((pl.col("quantum_efficiency") / pl.col("quantum_efficiency_clean")).round(9).unique().sort())
    assert ratio.to_series().to_list() == [0.95, 1.0]


def test_dimmed_light_and_warm_die_show_in_the_frames() -> None:
    plan = next(p for p in plan_fleet(FleetConfig(modules=200, seed=2, width=64, height=48,
                                                  station_events=(DIM, HOT)))
                if p.station_id == "ST02" and p.captured_at.date() >= DIM.start_day)
    flat = PlannedFrame("flat", 0.01, 6000.0, "ptc")
    dark = PlannedFrame("dark", 1.0, 0.0, "dark_series")

    def mean_dn(params: object, frame: PlannedFrame) -> float:
        """Mean DN over the pixels that are not hot (a hot pixel clips at 1 s)."""
        rng, key = module_rng((2, plan.index))
        maps = build_maps(params, rng, 0.01)  # type: ignore[arg-type]
        healthy = maps.dark_current_e_per_s < 5 * np.median(maps.dark_current_e_per_s)
        return float(render_frame(params, maps, frame, 0, key)[healthy].mean())  # type: ignore[arg-type]

    nominal = replace(plan.params, light_source_factor=1.0)
    black = mean_dn(nominal, PlannedFrame("dark", 0.01, 0.0, "dark_series"))
    assert (mean_dn(plan.params, flat) - black) / (mean_dn(nominal, flat) - black) == pytest.approx(0.95, abs=0.003)
    warm = replace(nominal, temperature_excess_c=14.0)  # two doublings
    dark_nominal, dark_warm = mean_dn(nominal, dark) - black, mean_dn(warm, dark) - black
    assert dark_warm / dark_nominal == pytest.approx(4.0, rel=0.05)


def test_truth_and_manifests_of_a_fleet_with_events(tmp_path: Path) -> None:
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    result = CliRunner().invoke(app, [
        "synth", "-n", "24", "-o", str(landing), "--truth", str(truth), "--width", "16", "--height", "12",
        "--workers", "1", "--seed", "3", "--span-days", "4",
        "--station-event", "ST02:light_dimming:2026-03-02:0.05", "--station-event", "ST03:temperature_excess:2026-03-04:7"])
    assert result.exit_code == 0, result.output
    events = pl.read_parquet(truth / "station_events.parquet")
    assert events.to_dicts() == [
        {"fleet_seed": 3, "station_id": "ST02", "kind": "light_dimming", "start_day": date(2026, 3, 2),
         "magnitude": 0.05, "unit": "1"},
        {"fleet_seed": 3, "station_id": "ST03", "kind": "temperature_excess", "start_day": date(2026, 3, 4),
         "magnitude": 7.0, "unit": "degC"}]
    modules = pl.read_parquet(truth / "modules.parquet")
    st02 = modules.filter(pl.col("station") == "ST02")
    assert st02.height > 0 and (st02["station_light_factor"] == 0.95).all()
    assert (modules.filter(pl.col("station") != "ST02")["station_light_factor"] == 1.0).all()
    hot = modules.filter(pl.col("station_temperature_excess_c") > 0)
    assert set(hot["station"]) == {"ST03"}
    assert np.allclose(hot["dark_current_e_per_s"], hot["dark_current_25c_e_per_s"]
                       * 2 ** ((hot["temperature_c"] + 7.0 - 25) / 7))
    for row in hot.iter_rows(named=True):  # the manifest states the recorded temperature
        manifest = json.loads((landing / row["session_id"] / "manifest.json").read_text())
        assert manifest["temperature_c"] == row["temperature_c"]
    bad = CliRunner().invoke(app, ["synth", "-n", "2", "-o", str(tmp_path / "x"), "--station-event", "ST02:dim:2026-03-02:0.1"])
    assert bad.exit_code == 2 and "valid: light_dimming" in bad.output
