"""Station-watch fixtures: a synthetic fleet's modules as ``module_stats`` partitions, without
rendering frames (the values an exact measurement gives, :func:`sensorfleet.synth.stations.as_measured`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from sensorfleet import tables
from sensorfleet.registry import MODULE_STATS
from sensorfleet.synth.fleet import FleetConfig, plan_fleet
from sensorfleet.synth.stations import StationEvent, as_measured

START = datetime(2026, 3, 2, 6, tzinfo=UTC)


def fleet_modules(seed: int, days: int = 40, per_day: int = 12, events: tuple[StationEvent, ...] = ()) -> pl.DataFrame:
    """The measured modules of a 4-station fleet of ``per_day`` modules a day over ``days`` days."""
    config = FleetConfig(modules=per_day * days, seed=seed, start=START, span_days=days, station_events=events)
    return as_measured(plan_fleet(config))


def write_module_stats(tables_root: Path, modules: pl.DataFrame) -> list[str]:
    """Publish ``modules`` as ``module_stats`` partitions (other columns null); the days written."""
    rows = modules.with_columns(pl.lit(START, dtype=pl.Datetime("us", "UTC")).alias("written_at"))
    full = pl.concat([MODULE_STATS.empty(), rows], how="diagonal_relaxed")
    days = full.with_columns(pl.col("captured_at").dt.date().cast(pl.String).alias("__day"))
    for (day,), part in days.partition_by("__day", as_dict=True, maintain_order=True).items():
        tables.publish_partition(tables_root, MODULE_STATS.name, str(day), part.drop("__day"))
    return sorted(days["__day"].unique().to_list())


def day_of(text: str) -> date:
    return date.fromisoformat(text)
