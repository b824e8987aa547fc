"""Station events of a synthetic fleet: a test station (not a module) that starts to drift.

An event hits every session its station captures from ``start_day`` (UTC) on:

- ``light_dimming``: the light source delivers ``1 - magnitude`` of the photons the manifest
  states (``photons_per_pixel`` stays nominal in the manifest; the sensor sees fewer), so every
  flat (and edge chart) of the station is darker and the measured QE lower by that factor;
- ``temperature_excess``: the temperature control fails and the die runs ``magnitude`` degC
  warmer than the recorded ``temperature_c``; the dark current follows the actual temperature
  (doubling every 7 degC), the manifest states the recorded one.

Events are applied after every draw of the fleet (:func:`apply_station_events`), so a fleet
with events has the same modules, labels and random streams as the same fleet without; the
truth goes to ``truth/station_events.parquet`` (:func:`events_frame`). The final test runs
elsewhere and does not see the capture station's events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from sensorfleet.synth.fleet import ModulePlan

STATION_EVENTS_TRUTH = "station_events.parquet"
"""Truth file of a fleet's station events (written only when the fleet has events)."""

#: kind -> (unit of the magnitude, meaning, valid range low, high: low < magnitude <= high)
STATION_EVENT_KINDS: dict[str, tuple[str, str, float, float]] = {
    "light_dimming": ("1", "fraction of the nominal photons the light source no longer delivers", 0.0, 0.9),
    "temperature_excess": ("degC", "die temperature above the recorded temperature_c", 0.0, 40.0),
}


def station_id(index: int) -> str:
    """The id of station ``index`` (0-based) of a synthetic fleet: ``ST01``, ``ST02`` ..."""
    return f"ST{index + 1:02d}"


@dataclass(frozen=True)
class StationEvent:
    """From ``start_day`` (UTC capture day, inclusive) on, station ``station_id`` drifts by
    ``magnitude`` of ``kind`` (units in :data:`STATION_EVENT_KINDS`: a fraction of the photons
    for ``light_dimming``, degC for ``temperature_excess``)."""

    station_id: str
    kind: str
    start_day: date
    magnitude: float

    def __post_init__(self) -> None:
        if self.kind not in STATION_EVENT_KINDS:
            raise ValueError(f"station event kind {self.kind!r} unknown; valid: {', '.join(STATION_EVENT_KINDS)}")
        unit, _, low, high = STATION_EVENT_KINDS[self.kind]
        if not (math.isfinite(self.magnitude) and low < self.magnitude <= high):
            raise ValueError(f"station event {self.kind}: magnitude must be in ({low:g}, {high:g}] {unit}, "
                             f"found {self.magnitude}")

    @property
    def unit(self) -> str:
        return STATION_EVENT_KINDS[self.kind][0]

    def active(self, station: str, day: date) -> bool:
        """Whether the event acts on a session of ``station`` captured on UTC ``day``."""
        return station == self.station_id and day >= self.start_day


def parse_station_event(text: str) -> StationEvent:
    """``STATION:KIND:YYYY-MM-DD:MAGNITUDE`` (e.g. ``ST02:light_dimming:2026-03-12:0.03``) as a
    :class:`StationEvent`; ValueError naming the part that is wrong and the valid forms."""
    parts = text.split(":")
    form = "STATION:KIND:YYYY-MM-DD:MAGNITUDE, e.g. ST02:light_dimming:2026-03-12:0.03"
    if len(parts) != 4:
        raise ValueError(f"station event {text!r}: expected {form}")
    station, kind, day, magnitude = (p.strip() for p in parts)
    try:
        start = date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"station event {text!r}: start day {day!r} is not a date YYYY-MM-DD") from None
    try:
        value = float(magnitude)
    except ValueError:
        raise ValueError(f"station event {text!r}: magnitude {magnitude!r} is not a number") from None
    return StationEvent(station, kind, start, value)


def check_stations(events: Sequence[StationEvent], stations: int) -> None:
    """Refuse an event on a station the fleet does not have (the error lists the valid ids)."""
    valid = [station_id(i) for i in range(stations)]
    unknown = sorted({e.station_id for e in events} - set(valid))
    if unknown:
        raise ValueError(f"station events name unknown station(s) {unknown}; the fleet's stations: {', '.join(valid)}")


def apply_station_events(plans: list[ModulePlan], events: Sequence[StationEvent]) -> list[ModulePlan]:
    """``plans`` with each module's light-source factor and temperature excess set by the events
    active at its station on its UTC capture day (dimming factors multiply, excesses add)."""
    if not events:
        return plans
    out = []
    for plan in plans:
        day = plan.captured_at.astimezone(UTC).date()
        active = [e for e in events if e.active(plan.station_id, day)]
        if not active:
            out.append(plan)
            continue
        factor = math.prod(1.0 - e.magnitude for e in active if e.kind == "light_dimming")
        excess = sum(e.magnitude for e in active if e.kind == "temperature_excess")
        params = replace(plan.params, light_source_factor=factor, temperature_excess_c=excess)
        out.append(replace(plan, params=params))
    return out


def events_frame(events: Sequence[StationEvent], fleet_seed: int) -> pl.DataFrame:
    """The truth rows of ``events``: ``fleet_seed``, ``station_id``, ``kind``, ``start_day``
    (UTC date), ``magnitude``, ``unit``."""
    return pl.DataFrame({
        "fleet_seed": [fleet_seed] * len(events), "station_id": [e.station_id for e in events],
        "kind": [e.kind for e in events], "start_day": [e.start_day for e in events],
        "magnitude": [float(e.magnitude) for e in events], "unit": [e.unit for e in events],
    }, schema={"fleet_seed": pl.Int64, "station_id": pl.String, "kind": pl.String, "start_day": pl.Date,
               "magnitude": pl.Float64, "unit": pl.String})


def as_measured(plans: Sequence[ModulePlan]) -> pl.DataFrame:
    """What an exact measurement of each module's session shows, in ``module_stats`` columns:
    ``session_id``, ``module_id``, ``station_id``, ``captured_at``, ``temperature_c`` (recorded),
    ``quantum_efficiency`` (the all-pixel mean QE times the light-source factor: the manifest's
    photons are taken at their word) and ``dark_current_e_per_s`` (at the actual temperature).

    The station charts (:mod:`sensorfleet.stations`) read these columns; the benchmark and the
    tests run them on fleets too large to render frame by frame. The measurement noise of a
    640 x 480 session (~0.1 % on QE) is small beside the module-to-module spread it leaves out.
    """
    return pl.DataFrame({
        "session_id": [p.session_id for p in plans], "module_id": [p.module_id for p in plans],
        "station_id": [p.station_id for p in plans], "captured_at": [p.captured_at for p in plans],
        "temperature_c": [p.params.temperature_c for p in plans],
        "quantum_efficiency": [p.params.mean_quantum_efficiency * p.params.light_source_factor for p in plans],
        "dark_current_e_per_s": [p.params.dark_current_e_per_s for p in plans],
    }, schema={"session_id": pl.String, "module_id": pl.String, "station_id": pl.String,
               "captured_at": pl.Datetime("us", "UTC"), "temperature_c": pl.Float64,
               "quantum_efficiency": pl.Float64, "dark_current_e_per_s": pl.Float64})
