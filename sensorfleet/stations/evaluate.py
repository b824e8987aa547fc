"""The charts scored against the truth of a synthetic fleet's station events
(``truth/station_events.parquet``, :mod:`sensorfleet.synth.stations`): detection delay per event
and false alarms per station-month. Used by ``python -m benchmarks.bench_stations`` and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

SIGNATURES = {"light_dimming": ("photon_response", "alarm_low"),
              "temperature_excess": ("dark_current_25c", "alarm_high")}
"""Event kind -> (metric, state) of the alarm that detects it."""
STATION_MONTH_DAYS = 30.0
"""Station-days with data in a station-month."""


@dataclass(frozen=True)
class FalseAlarms:
    """Alarm runs that began on a station-day no event explains, over the station-days watched
    (out of the baseline, no event active at the station)."""

    runs: int
    station_days: int

    @property
    def per_station_month(self) -> float:
        return self.runs / (self.station_days / STATION_MONTH_DAYS) if self.station_days else float("nan")


def _active(chart: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """(station_id, day) pairs of ``chart`` at which an event is active at the station."""
    pairs = chart.select("station_id", "day").unique()
    if events.is_empty():
        return pairs.clear()
    hits = pairs.join(events.select("station_id", "start_day"), on="station_id").filter(pl.col("day") >= pl.col("start_day"))
    return hits.select("station_id", "day").unique()


def detections(chart: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """One row per event (``station_id``, ``kind``, ``start_day``, ``magnitude``) with the
    ``metric`` that should see it, ``detected_day`` (first day on or after the start that its
    chart is in the expected alarm state; null if never) and ``delay_days`` (calendar days)."""
    signature = pl.DataFrame({"kind": list(SIGNATURES), "metric": [m for m, _ in SIGNATURES.values()],
                              "state": [s for _, s in SIGNATURES.values()]})
    wanted = events.select("station_id", "kind", "start_day", "magnitude").join(signature, on="kind", how="left")
    hits = (wanted.join(chart.select("station_id", "metric", "day", pl.col("state").alias("seen")),
                        on=["station_id", "metric"])
            .filter((pl.col("day") >= pl.col("start_day")) & (pl.col("seen") == pl.col("state")))
            .group_by("station_id", "kind", "start_day").agg(pl.col("day").min().alias("detected_day")))
    return (wanted.join(hits, on=["station_id", "kind", "start_day"], how="left")
            .with_columns((pl.col("detected_day") - pl.col("start_day")).dt.total_days().alias("delay_days"))
            .drop("state").sort("station_id", "start_day"))


def false_alarms(chart: pl.DataFrame, events: pl.DataFrame) -> FalseAlarms:
    """Alarm runs beginning on station-days without an active event, and the station-days out of
    the baseline without one (a station-day counts once, whatever the metrics)."""
    clean = (chart.filter(pl.col("state") != "baseline")
             .join(_active(chart, events), on=["station_id", "day"], how="anti"))
    onsets = clean.filter(pl.col("state").str.starts_with("alarm") & (pl.col("days_in_alarm") == 1))
    return FalseAlarms(runs=onsets.height, station_days=clean.select("station_id", "day").unique().height)
