"""Stations layer: the test stations watched for drift, from the modules they measured.

Thin over :func:`sensorfleet.stations.watch_stations_day`: an EWMA chart per station and
station metric (delivered photons, dark current at 25 degC, each against the other stations of
the day) with limits from the station's own baseline; the day's chart points
(``station_spc``) and alarms (``station_alarms``), the charts as a figure in the metadata, and a
warning check per day that fails while a station is out of its limits.
"""

# No `from __future__ import annotations`: Dagster reads the Config and resource annotations at
# decoration time.
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)
from pydantic import Field

from assets._common import STATIONS_FAILING, check_spec, frame_md, png_metadata
from assets.characterization import MODULE_STATS
from assets.resources import StorageResource
from assets.table_metadata import row_count_metadata, table_spec
from sensorfleet.stations import SpcConfig, StationDay, watch_stations_day
from sensorfleet.stations.plots import plot_station_charts

GROUP = "stations"
OWNER = "team:test-engineering"
CODE_VERSION = "1"
"""Version of this layer's code as Dagster sees it (bump when what the step writes changes)."""
STATION_SPC = "station_spc"
STATION_ALARMS = "station_alarms"
CHECK_ALARMS = "stations_within_limits"
STEP = "watch_stations"
"""The step (multi-asset) name: its run config lives under ``ops: {watch_stations: ...}``."""
CHART_NOT_DRAWN = ("_Not drawn in this run: a run over several days draws the station charts for its last "
                   "day only; each day's charts are the trailing window up to that day, which the last "
                   "day's contain. `sensorfleet pipeline run --day {day} --force` draws this day's._")
_DEFAULTS = SpcConfig()


class StationRunConfig(Config):  # type: ignore[misc]
    """Run parameters of the station charts (docs/stations.md)."""

    ewma_lambda: float = Field(default=_DEFAULTS.ewma_lambda, gt=0, le=1, description="EWMA weight of the newest day")
    limit_sigmas: float = Field(default=_DEFAULTS.limit_sigmas, gt=0, description="EWMA limits, in its standard deviations")
    baseline_days: int = Field(default=_DEFAULTS.baseline_days, ge=2, description="days with data in a station's baseline")
    baseline_min_modules: int = Field(default=_DEFAULTS.baseline_min_modules, ge=2,
                                      description="fewest modules in a station's baseline (it grows until reached)")
    chart: bool = Field(default=True, description=(
        "draw the station charts figure (a run over several days asks for it on its last day only: "
        "each day's charts are the trailing window up to that day)"))

    def spc(self) -> SpcConfig:
        return SpcConfig(ewma_lambda=self.ewma_lambda, limit_sigmas=self.limit_sigmas, baseline_days=self.baseline_days,
                         baseline_min_modules=self.baseline_min_modules)


def build_station_assets(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The ``station_spc`` and ``station_alarms`` assets (one step) on ``partitions_def``,
    downstream of ``module_stats``, with the daily warning check."""

    @multi_asset(
        name=STEP,
        partitions_def=partitions_def,
        specs=[
            table_spec(STATION_SPC, group=GROUP, deps=[MODULE_STATS], owner=OWNER, code_version=CODE_VERSION,
                       description="Table `station_spc`: each station's EWMA control chart point of the day per "
                                   "station metric (delivered photons, dark current at 25 degC against the other "
                                   "stations), with its limits from the station's own baseline."),
            table_spec(STATION_ALARMS, group=GROUP, deps=[MODULE_STATS], owner=OWNER, code_version=CODE_VERSION,
                       description="Table `station_alarms`: the stations and metrics beyond their limits on the day."),
        ],
        check_specs=[check_spec(CHECK_ALARMS, STATION_ALARMS, "Every station's charts are within their limits "
                                "on the day (warns: the station, not a module, drifted).", partitions_def)],
    )
    def watch_stations(context: AssetExecutionContext, config: StationRunConfig,
                       storage: StorageResource) -> Iterator[MaterializeResult | AssetCheckResult]:
        paths = storage.paths()
        day = context.partition_key
        result = watch_stations_day(paths, day, config.spc())
        context.log.info(f"{day}: {result.modules_read} modules up to the day, "
                         f"{result.spc_write.rows} chart points, {result.alarms.height} alarms")
        spc_metadata: dict[str, Any] = {
            **row_count_metadata(result.spc_write.rows, partitioned=True),
            "modules_read": MetadataValue.int(result.modules_read),
            "states": MetadataValue.json(_states(result)),
            "table": MetadataValue.path(str(result.spc_write.path)),
        }
        if config.chart:
            try:
                png = plot_station_charts(result.chart, title=f"Station charts up to {day}")
                chart_md, chart_path = png_metadata(png, paths.root / "plots" / day / "station-spc.png",
                                                    f"Station EWMA charts up to {day}")
                spc_metadata |= {"station_charts": chart_md, "station_charts_png": chart_path}
            except Exception as exc:  # a figure is a convenience: never fail the tables for it
                context.log.warning(f"station chart figure failed: {type(exc).__name__}: {exc}")
        else:
            spc_metadata["station_charts"] = MetadataValue.md(CHART_NOT_DRAWN.format(day=day))
        yield MaterializeResult(asset_key=STATION_SPC, metadata=spc_metadata)
        alarms = result.alarms.drop("written_at")
        yield MaterializeResult(asset_key=STATION_ALARMS, metadata={
            **row_count_metadata(result.alarms_write.rows, partitioned=True),
            "table": MetadataValue.path(str(result.alarms_write.path)),
            "alarms": MetadataValue.md(frame_md(alarms)),
        })
        yield AssetCheckResult(
            asset_key=STATION_ALARMS, check_name=CHECK_ALARMS, passed=alarms.is_empty(),
            severity=AssetCheckSeverity.WARN,
            metadata={"alarms": MetadataValue.int(alarms.height),
                      "stations_in_alarm": MetadataValue.json(sorted(set(alarms["station_id"].to_list()))),
                      STATIONS_FAILING: MetadataValue.json([f"{r['station_id']} {r['metric']} {r['direction']}"
                                                            for r in alarms.iter_rows(named=True)]),
                      "details": MetadataValue.md(frame_md(alarms))},
        )

    return watch_stations


def _states(result: StationDay) -> dict[str, int]:
    """Chart points of the day by state."""
    return {str(k): int(v) for k, v in result.points.group_by("state").len().sort("state").iter_rows()}
