"""Tables of the station watch (``sensorfleet.stations``): ``station_spc``, one row per station,
metric and capture day (the control chart), and ``station_alarms``, one row per station and
metric out of its limits that day. Partitioned by the capture day the chart point belongs to;
the event time is the capture time of the station's last module of that day."""

from __future__ import annotations

from sensorfleet.registry.ingest_tables import WRITTEN_AT
from sensorfleet.registry.model import Bound, Column, Table

_STATION = Column("station_id", "str", "test station")
_METRIC = Column("metric", "str", "station metric: photon_response (measured QE over the other stations': delivered "
                 "over nominal photons) or dark_current_25c (dark current brought to 25 degC with the recorded "
                 "temperature, over the other stations')")
_RATIO = Column("ratio", "f64", "the station's modules of the day against the other stations: exp of the mean of "
                "their log ratios to the other stations' same-day median (each clipped at 3 baseline scales); "
                "1 = like the others", "1", bound=Bound(0.0))
_EWMA = Column("ewma", "f64", "EWMA of the standardized daily values since the baseline (lambda 0.2 by default); "
               "null in the baseline", "z")
_LIMIT = Column("limit", "f64", "control limit of the EWMA, +-limit, with the uncertainty of the baseline's centre; "
                "null in the baseline", "z", bound=Bound(0.0))
_MODULES = Column("modules", "i64", "the station's modules of the day behind the ratio")
_LAST = Column("last_captured_at", "ts", "event time: capture time of the station's last module of the day, UTC")
_FIRST = Column("first_alarm_day", "date", "first day of the run of alarms this day belongs to (UTC capture day)")
_DAYS = Column("days_in_alarm", "i64", "days with data in that run so far, this one included")

STATION_SPC = Table(
    name="station_spc",
    description="EWMA control chart of each test station and station metric: the day's ratio against the other "
    "stations, its standardized value, the EWMA and its limits from the station's own baseline (docs/stations.md).",
    grain="one row per (station, metric, capture day with data)",
    produced_by="stations (asset `station_spc`)",
    key=("station_id", "metric"),
    event_time=_LAST.name,
    columns=(
        _STATION, _METRIC, _LAST, _MODULES,
        Column("reference_modules", "i64", "modules of the other stations behind the day's reference"),
        Column("reference_stations", "i64", "other stations behind the day's reference (median of their medians)"),
        _RATIO,
        Column("centre_ratio", "f64", "the station's usual ratio: median over its baseline modules", "1",
               bound=Bound(0.0)),
        Column("z", "f64", "the day's ratio standardized: (log ratio - log centre) over its standard deviation "
               "(module scale of the baseline, module counts, baseline over-dispersion)", "z"),
        _EWMA, _LIMIT,
        Column("state", "str", "baseline (limits not yet known), in_control, alarm_low or alarm_high"),
        _FIRST, _DAYS, WRITTEN_AT,
    ),
)

STATION_ALARMS = Table(
    name="station_alarms",
    description="Every station and metric whose EWMA chart is beyond its limits on the day: the station, not a "
    "module, has drifted (dimmer light, warmer die...). One row per day of the alarm, until the station is back "
    "within limits.",
    grain="one row per (station, metric) in alarm on the capture day",
    produced_by="stations (asset `station_alarms`)",
    key=("station_id", "metric"),
    event_time=_LAST.name,
    columns=(
        _STATION, _METRIC, _LAST,
        Column("direction", "str", "low or high: the side of the limits the EWMA crossed"),
        Column("meaning", "str", "what the direction suggests at the station (e.g. light source dimmer than the "
               "manifest states)"),
        _RATIO, _EWMA, _LIMIT, _MODULES, _FIRST, _DAYS, WRITTEN_AT,
    ),
)
