"""One capture day of the station watch: read the modules measured up to the day, chart every
station, publish the day's chart points (``station_spc``) and alarms (``station_alarms``).

The charts are recomputed from the start of the history each day (a projected read of the six
``module_stats`` columns the metrics need), so a day's rows depend only on the modules
captured up to it, whatever order the days are run in; re-running a day after an earlier day
changed gives that day's new rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from sensorfleet import tables
from sensorfleet.config import Paths
from sensorfleet.registry import MODULE_STATS, STATION_ALARMS, STATION_SPC
from sensorfleet.stations.metrics import METRICS, MODULE_COLUMNS
from sensorfleet.stations.spc import SpcConfig, station_charts


@dataclass(frozen=True)
class StationDay:
    """What :func:`watch_stations_day` found and wrote."""

    day: str
    chart: pl.DataFrame  # every station's chart up to the day (:func:`station_charts`)
    points: pl.DataFrame  # the day's rows of ``chart``
    alarms: pl.DataFrame  # the day's ``station_alarms`` rows
    spc_write: tables.PartitionWrite
    alarms_write: tables.PartitionWrite
    modules_read: int


def read_module_history(tables_root: Path, last_day: str) -> pl.DataFrame:
    """:data:`MODULE_COLUMNS` of every ``module_stats`` row captured on ``last_day`` or before."""
    files = [f for day in tables.list_partitions(tables_root, MODULE_STATS.name) if day <= last_day
             for f in sorted(tables.partition_dir(tables_root, MODULE_STATS.name, day).glob("[!.]*.parquet"))]
    if not files:
        return MODULE_STATS.empty().select(MODULE_COLUMNS)
    return pl.scan_parquet(files).select(MODULE_COLUMNS).collect()


def alarm_rows(points: pl.DataFrame) -> pl.DataFrame:
    """The ``station_alarms`` rows (without ``written_at``) of chart ``points`` in alarm."""
    low = pl.col("state") == "alarm_low"
    meaning = pl.col("metric").replace_strict(
        {m: [v.low_means, v.high_means] for m, v in METRICS.items()}, return_dtype=pl.List(pl.String))
    return points.filter(pl.col("state").str.starts_with("alarm")).select(
        "station_id", "metric", "last_captured_at", pl.when(low).then(pl.lit("low")).otherwise(pl.lit("high")).alias("direction"),
        meaning.list.get(pl.when(low).then(0).otherwise(1)).alias("meaning"),
        "ratio", "ewma", "limit", "modules", "first_alarm_day", "days_in_alarm")


def watch_stations_day(paths: Paths, day: str, config: SpcConfig = SpcConfig(),
                       now: datetime | None = None) -> StationDay:
    """Chart every station on the modules captured up to ``day`` (``YYYY-MM-DD``) and publish the
    day's partitions of ``station_spc`` and ``station_alarms`` (empty ones when no station
    measured that day); ``now`` is the ``written_at`` of changed rows (default: the clock)."""
    written_at = now or datetime.now(UTC)
    modules = read_module_history(paths.tables, day)
    chart = station_charts(modules, config)
    points = chart.filter(pl.col("day") == date.fromisoformat(day))
    stamp = pl.lit(written_at, dtype=pl.Datetime("us", "UTC")).alias("written_at")
    spc = points.drop("day").with_columns(stamp).select(STATION_SPC.column_names)
    alarms = alarm_rows(points).with_columns(stamp)
    spc_write = tables.publish_partition(paths.tables, STATION_SPC.name, day, spc)
    alarms_write = tables.publish_partition(paths.tables, STATION_ALARMS.name, day, alarms)
    return StationDay(day, chart, points, alarms, spc_write, alarms_write, modules.height)
