"""One registry of tables and metrics: every column declared once (type, unit, meaning, EMVA 1288
symbol and section, physical bounds), everything else derived from it.

Derived here or by callers: the parquet schemas the writers enforce (``sensorfleet.tables``), the
column descriptions in the parquet field metadata, the Dagster column schemas and bounds checks
(``assets``), the warehouse views and its ``tables`` view (``sensorfleet.warehouse``), the
feature views (``sensorfleet.features``) and ``docs/tables.md`` (``render_markdown``).
"""

from __future__ import annotations

from sensorfleet.registry.emva_tables import (
    DEFECT_VALUE_UNITS,
    EMVA_METRICS,
    EMVA_UNCERTAINTIES,
    MODULE_CHANNEL_STATS,
    MODULE_STATS,
    PIXEL_DEFECTS,
)
from sensorfleet.registry.ingest_tables import CAPTURES, REJECTIONS, SESSIONS
from sensorfleet.registry.label_tables import FINAL_TEST
from sensorfleet.registry.model import Bound, Column, Table
from sensorfleet.registry.optics_tables import MODULE_OPTICS, SFR
from sensorfleet.registry.plan_tables import CAPTURE_PLANS
from sensorfleet.registry.score_tables import ANOMALY_SCORES, SPATIAL_SCORES, YIELD_PREDICTIONS
from sensorfleet.registry.station_tables import STATION_ALARMS, STATION_SPC

TABLES: dict[str, Table] = {
    t.name: t
    for t in (SESSIONS, CAPTURES, REJECTIONS, MODULE_STATS, MODULE_CHANNEL_STATS, PIXEL_DEFECTS, SFR, MODULE_OPTICS,
              FINAL_TEST, ANOMALY_SCORES, SPATIAL_SCORES, YIELD_PREDICTIONS, STATION_SPC, STATION_ALARMS, CAPTURE_PLANS)
}
"""Every table of the data root, by name, in the order the docs list them."""


def get_table(name: str) -> Table:
    """The registered table ``name``; the error lists the valid names."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; registered tables: {', '.join(TABLES)}") from None


def register(table: Table) -> Table:
    """Add a table declared elsewhere (feature tables, score tables); refuse a second, different
    declaration under the same name."""
    have = TABLES.get(table.name)
    if have is not None and have != table:
        raise ValueError(f"table {table.name!r} is already registered with another declaration")
    TABLES[table.name] = table
    return table


__all__ = [
    "ANOMALY_SCORES", "CAPTURE_PLANS", "CAPTURES", "DEFECT_VALUE_UNITS", "EMVA_METRICS", "EMVA_UNCERTAINTIES", "FINAL_TEST",
    "MODULE_CHANNEL_STATS", "MODULE_OPTICS", "MODULE_STATS", "PIXEL_DEFECTS", "REJECTIONS", "SESSIONS", "SFR",
    "SPATIAL_SCORES", "STATION_ALARMS", "STATION_SPC", "TABLES", "YIELD_PREDICTIONS",
    "Bound", "Column", "Table", "get_table", "register",
]
