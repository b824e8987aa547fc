"""Station charts: an injected event is found within a bounded delay, on its station, metric
and side; clean fleets of the same size stay quiet; the day's rows depend on the past only;
the published tables follow the registry."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from sensorfleet.config import resolve_paths
from sensorfleet.registry import STATION_ALARMS, STATION_SPC
from sensorfleet.stations import SpcConfig, station_charts, watch_stations_day
from sensorfleet.stations.evaluate import detections, false_alarms
from sensorfleet.stations.metrics import module_values
from sensorfleet.synth.stations import StationEvent, events_frame
from tests.stations.station_fleet import START, fleet_modules, write_module_stats

EVENT_DAY = (START + timedelta(days=30)).date()
EVENTS = (StationEvent("ST02", "light_dimming", EVENT_DAY, 0.05),
          StationEvent("ST04", "temperature_excess", EVENT_DAY, 5.0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_injected_events_are_found_within_a_week(seed: int) -> None:
    chart = station_charts(fleet_modules(seed, days=50, events=EVENTS))
    found = detections(chart, events_frame(EVENTS, seed))
    assert found["delay_days"].null_count() == 0, found
    assert found["delay_days"].max() <= 7, found  # benchmark: median 2 / 4.5 days, worst 5 / 9 at 12 modules a day
    # the alarm names the right side, and nothing fired on these stations before the events
    alarms = chart.filter(pl.col("state").str.starts_with("alarm"))
    before = alarms.filter(pl.col("day") < EVENT_DAY)
    assert before.is_empty(), before
    st02 = alarms.filter((pl.col("station_id") == "ST02") & (pl.col("metric") == "photon_response"))
    assert set(st02["state"]) == {"alarm_low"}
    st04 = alarms.filter((pl.col("station_id") == "ST04") & (pl.col("metric") == "dark_current_25c"))
    assert set(st04["state"]) == {"alarm_high"}
    # the dimmed station reads ~5 % below the others once its baseline is behind it
    after = chart.filter((pl.col("station_id") == "ST02") & (pl.col("metric") == "photon_response")
                         & (pl.col("day") >= EVENT_DAY))
    assert float((after["ratio"] / after["centre_ratio"]).median()) == pytest.approx(0.95, abs=0.01)


def test_clean_fleets_of_the_same_size_stay_quiet() -> None:
    runs, station_days = 0, 0
    for seed in range(4):
        chart = station_charts(fleet_modules(seed, days=50))
        assert set(chart["station_id"]) == {"ST01", "ST02", "ST03", "ST04"}
        fa = false_alarms(chart, events_frame((), seed))
        runs, station_days = runs + fa.runs, station_days + fa.station_days
    assert station_days > 4 * 4 * 25  # the monitored part after the 20-day baselines
    # benchmark over 20 seeds: 0.03 false alarms per station-month; allow for 4 seeds' scatter
    assert runs / (station_days / 30) <= 0.25


def test_a_day_depends_only_on_its_past() -> None:
    modules = fleet_modules(5, days=40, events=EVENTS)
    full = station_charts(modules)
    for day in (date(2026, 3, 25), EVENT_DAY + timedelta(days=3)):
        past = modules.filter(pl.col("captured_at").dt.date() <= day)
        assert station_charts(past).filter(pl.col("day") == day).equals(full.filter(pl.col("day") == day))


def test_baseline_then_limits_and_a_faulty_module_does_not_alarm() -> None:
    modules = fleet_modules(6, days=40)
    # one module on each station with a third of the QE (a low-QE fault far worse than the fleet's)
    worst = modules.group_by("station_id").agg(pl.col("session_id").max())["session_id"]
    broken = modules.with_columns(pl.when(pl.col("session_id").is_in(worst.implode()))
                                  .then(pl.col("quantum_efficiency") / 3).otherwise(pl.col("quantum_efficiency")))
    chart = station_charts(broken, SpcConfig(baseline_days=20))
    first = chart.sort("day").group_by("station_id", "metric").first()
    assert set(first["state"]) == {"baseline"} and first["limit"].null_count() == first.height
    live = chart.filter(pl.col("state") != "baseline")
    assert live["limit"].null_count() == 0 and (live["limit"] > 0).all()
    assert not live["state"].str.starts_with("alarm").any()


def test_rows_without_the_columns_are_refused() -> None:
    with pytest.raises(ValueError, match=r"lack columns \['quantum_efficiency'\]"):
        module_values(fleet_modules(0, days=2).drop("quantum_efficiency"))
    with pytest.raises(ValueError, match="ewma_lambda"):
        SpcConfig(ewma_lambda=0)


def test_day_publishes_registry_tables(tmp_path: Path) -> None:
    paths = resolve_paths(tmp_path / "data", tmp_path / "landing")
    days = write_module_stats(paths.tables, fleet_modules(1, days=40, events=EVENTS))
    last = days[-2]  # a full day (the fleet's last day ends at 06:00)
    result = watch_stations_day(paths, last)
    spc = pl.read_parquet(result.spc_write.path)
    alarms = pl.read_parquet(result.alarms_write.path)
    assert spc.columns == STATION_SPC.column_names and alarms.columns == STATION_ALARMS.column_names
    assert spc.schema == STATION_SPC.polars_schema() and alarms.schema == STATION_ALARMS.polars_schema()
    assert set(spc["station_id"]) == {"ST01", "ST02", "ST03", "ST04"} and set(spc["metric"]) == {
        "photon_response", "dark_current_25c"}
    written = {d: pl.read_parquet(paths.tables / "module_stats" / f"capture_date={d}").height for d in days}
    assert result.modules_read == sum(n for d, n in written.items() if d <= last)
    assert {(r["station_id"], r["metric"], r["direction"]) for r in alarms.iter_rows(named=True)} == {
        ("ST02", "photon_response", "low"), ("ST04", "dark_current_25c", "high")}
    assert alarms.filter(pl.col("station_id") == "ST02")["meaning"][0] == "light source dimmer than the manifest states"
    # a day before the events: chart points, no alarm rows (an empty partition that still reads)
    quiet = watch_stations_day(paths, days[0])
    assert pl.read_parquet(quiet.alarms_write.path).height == 0
    assert set(pl.read_parquet(quiet.spc_write.path)["state"]) == {"baseline"}
    # re-running a day with nothing new leaves its files alone
    assert not watch_stations_day(paths, last).spc_write.rewritten
