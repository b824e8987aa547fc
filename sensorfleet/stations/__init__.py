"""The station watch: statistical process control of the test stations (not the modules).

Per station and metric (:mod:`.metrics`: the photons the light source delivers, the die
temperature as the dark current shows it), an EWMA chart with limits from the station's own
baseline (:mod:`.spc`); each capture day publishes its chart points and alarms (:mod:`.day`).
See docs/stations.md.
"""

from __future__ import annotations

from sensorfleet.stations.day import StationDay, alarm_rows, read_module_history, watch_stations_day
from sensorfleet.stations.metrics import (
    METRICS,
    MODULE_COLUMNS,
    StationMetric,
    module_values,
    residuals,
)
from sensorfleet.stations.spc import STATES, SpcConfig, run_charts, station_charts

__all__ = [
    "METRICS", "MODULE_COLUMNS", "STATES", "SpcConfig", "StationDay", "StationMetric", "alarm_rows", "module_values",
    "read_module_history", "residuals", "run_charts", "station_charts", "watch_stations_day",
]
