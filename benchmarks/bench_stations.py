"""Station watch on injected events: detection delay (days) and false alarms per station-month.

Fleets of 4 stations drawn by the synthetic fleet's planner (lots, wafers, dies, faults, the
stations' temperatures: everything but the frames), each module's values as an exact
measurement shows them (``sensorfleet.synth.stations.as_measured``; a 640 x 480 session
measures QE to ~0.1 %, far below the 2 % module-to-module spread that dominates), charted by
``sensorfleet.stations.station_charts`` with the default parameters. Per magnitude level, every
seed gets one light-source dimming and one temperature-control failure on two random stations
from day ``--event-day``; clean fleets of the same seeds give the false alarms without events.

    python -m benchmarks.bench_stations            # 20 seeds x 4 levels, 60 days, 12 modules/day
    python -m benchmarks.bench_stations --quick    # 4 seeds
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from benchmarks._common import machine_info, median_seconds, print_table, write_results
from sensorfleet.stations import SpcConfig, station_charts
from sensorfleet.stations.evaluate import detections, false_alarms
from sensorfleet.synth.fleet import FleetConfig, plan_fleet
from sensorfleet.synth.stations import StationEvent, as_measured, events_frame, station_id

START = datetime(2026, 3, 2, 6, tzinfo=UTC)
LEVELS = ((0.0, 0.0), (0.02, 2.0), (0.03, 3.0), (0.05, 5.0))
"""(light dimming fraction, temperature excess degC) per level; (0, 0): clean fleets."""


def fleet_events(seed: int, level: tuple[float, float], event_day: int) -> tuple[StationEvent, ...]:
    """One dimming and one temperature failure on two distinct random stations."""
    if level == (0.0, 0.0):
        return ()
    a, b = np.random.default_rng([seed, 0x57A7]).choice(4, size=2, replace=False)
    day = (START + timedelta(days=event_day)).date()
    return (StationEvent(station_id(int(a)), "light_dimming", day, level[0]),
            StationEvent(station_id(int(b)), "temperature_excess", day, level[1]))


def run_fleet(seed: int, level: tuple[float, float], args: argparse.Namespace) -> tuple[pl.DataFrame, Any]:
    events = fleet_events(seed, level, args.event_day)
    config = FleetConfig(modules=args.per_day * args.days, seed=seed, start=START, span_days=args.days,
                         station_events=events)
    spc = SpcConfig(limit_sigmas=args.limit_sigmas, baseline_days=args.baseline_days)
    chart = station_charts(as_measured(plan_fleet(config)), spc)
    truth = events_frame(events, seed)
    return detections(chart, truth), false_alarms(chart, truth)


def summarize(level: tuple[float, float], found: pl.DataFrame, runs: int, station_days: int) -> list[dict[str, Any]]:
    rows = []
    fa = runs / (station_days / 30.0)
    for kind, magnitude in (("light_dimming", level[0]), ("temperature_excess", level[1])):
        mine = found.filter(pl.col("kind") == kind)
        delays = mine["delay_days"].drop_nulls().to_list()
        rows.append({"event": kind, "magnitude": magnitude, "events": mine.height,
                     "detected": len(delays), "delay_median_d": statistics.median(delays) if delays else None,
                     "delay_max_d": max(delays) if delays else None,
                     "false_alarms_per_station_month": fa})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 seeds instead of 20")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--days", type=int, default=60, help="days of captures per fleet")
    parser.add_argument("--per-day", type=int, default=12, help="modules a day over the 4 stations")
    parser.add_argument("--limit-sigmas", type=float, default=SpcConfig().limit_sigmas, help="EWMA limit L")
    parser.add_argument("--baseline-days", type=int, default=SpcConfig().baseline_days)
    parser.add_argument("--event-day", type=int, default=30, help="events start this many days after the first")
    args = parser.parse_args(argv)
    seeds = range(4 if args.quick else args.seeds)
    start = time.perf_counter()
    table: list[dict[str, Any]] = []
    for level in LEVELS:
        found, runs, station_days = [], 0, 0
        for seed in seeds:
            det, fa = run_fleet(seed, level, args)
            found.append(det)
            runs, station_days = runs + fa.runs, station_days + fa.station_days
        if level == (0.0, 0.0):
            table.append({"event": "none (clean)", "magnitude": 0.0, "events": 0, "detected": 0,
                          "false_alarms_per_station_month": runs / (station_days / 30.0),
                          "false_alarm_runs": runs, "station_days": station_days})
        else:
            table += summarize(level, pl.concat(found), runs, station_days)
    wall = time.perf_counter() - start
    # cost of one day's recompute over a year of history at 48 modules a day
    year = as_measured(plan_fleet(FleetConfig(modules=48 * 365, seed=0, start=START, span_days=365)))
    chart_s = median_seconds(lambda: station_charts(year), repeats=3)
    columns = ["event", "magnitude", "events", "detected", "delay_median_d", "delay_max_d",
               "false_alarms_per_station_month"]
    print_table(table, columns)
    print(f"{len(seeds)} seeds x {len(LEVELS)} levels, {args.days} days, {args.per_day} modules/day over 4 stations, "
          f"events from day {args.event_day}, L {args.limit_sigmas}, baseline {args.baseline_days} days: {wall:.1f} s; charts of 365 days x 48 modules/day: {chart_s:.2f} s")
    payload = {"machine": machine_info(), "args": vars(args), "rows": table, "wall_s": wall,
               "chart_year_48_per_day_s": chart_s}
    write_results("stations", payload)
    return payload


if __name__ == "__main__":
    main()
