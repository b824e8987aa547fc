"""Station metrics: what each module's numbers say about the station that measured it.

A module's measured QE is its sensor's QE times the photons the station's light source really
delivered over the manifest's nominal ``photons_per_pixel``; its dark current at the recorded
temperature is the sensor's times ``2**(excess / 7 degC)`` when the die ran warmer than
recorded. The sensor part varies from module to module and from lot to lot (QE: lot sd 3 %,
module 1.5 %; dark current: lot x1.28, module x1.16 sd), as much as the station faults we look
for, so a station is compared with the other stations on the same day: modules go to stations
at random, so the other stations' modules of that day carry the same lots. (A fleet with one
station, or stations that each test their own lots, cannot be watched this way: that needs a
golden module captured daily.) What remains of a
module's value after that reference is the station's part plus the module's own scatter.

Per metric, on the natural log scale (a difference of 0.03 is ~3 %):

- ``photon_response``: ``ln(quantum_efficiency)``; the station's photons over the others';
- ``dark_current_25c``: ``ln(dark_current_e_per_s) - ln 2 * (temperature_c - 25) / 7``: the
  dark current brought to 25 degC with the recorded temperature (the fleet's doubling of 7 degC),
  so stations at different ambient temperatures compare; a die warmer than recorded shows here.

All modules' rows in one frame, one pass of polars group-bys and joins (no per-station loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

DARK_CURRENT_DOUBLING_C = 7.0
"""Temperature step that doubles the dark current (degC), to bring it to 25 degC."""


@dataclass(frozen=True)
class StationMetric:
    """One station metric: its name, the ``module_stats`` column it reads, its unit as charted,
    and what a low and a high value mean."""

    name: str
    column: str
    description: str
    low_means: str
    high_means: str


METRICS: dict[str, StationMetric] = {m.name: m for m in (
    StationMetric("photon_response", "quantum_efficiency",
                  "measured QE over the other stations' same-day median: delivered over nominal photons",
                  "light source dimmer than the manifest states", "light source brighter than the manifest states"),
    StationMetric("dark_current_25c", "dark_current_e_per_s",
                  "dark current at 25 degC (recorded temperature) over the other stations' same-day median",
                  "die cooler than recorded", "die warmer than recorded (temperature control)"),
)}
"""The station metrics, by name."""

MODULE_COLUMNS = ("session_id", "station_id", "captured_at", "temperature_c", "quantum_efficiency",
                  "dark_current_e_per_s")
"""The ``module_stats`` columns the station metrics read."""


def module_values(modules: pl.DataFrame) -> pl.DataFrame:
    """Long frame of every module's metric values: ``day`` (UTC date of ``captured_at``),
    ``station_id``, ``session_id``, ``captured_at``, ``metric``, ``y`` (natural log, see the module docstring).

    ``modules`` holds :data:`MODULE_COLUMNS`; rows without a positive finite value (a session
    without photon counts, a dark current at or below 0) are left out of that metric.
    """
    missing = [c for c in MODULE_COLUMNS if c not in modules.columns]
    if missing:
        raise ValueError(f"module rows for the station metrics lack columns {missing}; need {list(MODULE_COLUMNS)}")
    base = modules.select(
        pl.col("captured_at").dt.convert_time_zone("UTC").dt.date().alias("day"),
        pl.col("station_id"), pl.col("session_id"), pl.col("captured_at").dt.convert_time_zone("UTC"),
        pl.col("quantum_efficiency").cast(pl.Float64).alias("qe"),
        pl.col("dark_current_e_per_s").cast(pl.Float64).alias("dc"),
        pl.col("temperature_c").cast(pl.Float64).alias("t"),
    ).filter(pl.col("station_id").is_not_null() & pl.col("day").is_not_null())
    photon = base.filter(pl.col("qe").is_finite() & (pl.col("qe") > 0)).select(
        "day", "station_id", "session_id", "captured_at", pl.lit("photon_response").alias("metric"), pl.col("qe").log().alias("y"))
    dark = base.filter(pl.col("dc").is_finite() & (pl.col("dc") > 0) & pl.col("t").is_finite()).select(
        "day", "station_id", "session_id", "captured_at", pl.lit("dark_current_25c").alias("metric"),
        (pl.col("dc").log() - math.log(2.0) * (pl.col("t") - 25.0) / DARK_CURRENT_DOUBLING_C).alias("y"))
    return pl.concat([photon, dark])


def residuals(values: pl.DataFrame, exclude: pl.DataFrame | None = None) -> pl.DataFrame:
    """``values`` (:func:`module_values`) with ``reference``: the median over the other stations
    of their median ``y`` that day (the median of station medians, so that one drifting station
    moves its neighbours' reference little), ``reference_modules`` and ``reference_stations``
    behind it, and ``residual = y - reference``. ``exclude`` (``day``, ``metric``,
    ``station_id``) names station-days kept out of the other stations' references (stations
    already in alarm). Modules of a day on which no other station counts are left out.
    """
    per_station = values.group_by("day", "metric", "station_id").agg(
        pl.col("y").median().alias("station_median"), pl.len().cast(pl.Int64).alias("n"))
    pool = per_station if exclude is None else per_station.join(
        exclude.select("day", "metric", "station_id"), on=["day", "metric", "station_id"], how="anti")
    reference = (per_station.select("day", "metric", "station_id")
                 .join(pool.rename({"station_id": "other_station"}), on=["day", "metric"])
                 .filter(pl.col("station_id") != pl.col("other_station"))
                 .group_by("day", "metric", "station_id")
                 .agg(pl.col("station_median").median().alias("reference"),
                      pl.col("n").sum().cast(pl.Int64).alias("reference_modules"),
                      pl.len().cast(pl.Int64).alias("reference_stations")))
    return (values.join(reference, on=["day", "metric", "station_id"], how="inner")
            .with_columns((pl.col("y") - pl.col("reference")).alias("residual")))
