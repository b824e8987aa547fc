"""Partitions of the asset graph: one per UTC capture day that has data.

A day is the grain of work whatever the fleet size (100,000 sessions a day is still one
partition); the sessions of a day are processed in parallel inside the step. The partitions are
dynamic: the landing sensor and ``pipeline run`` add a day when they first run it, so the UI
lists the days that hold data, not every calendar day since a fixed start (docs/architecture.md).
"""

from __future__ import annotations

from datetime import date, datetime

from dagster import DynamicPartitionsDefinition

from sensorfleet.capture_days import FIRST_CAPTURE_DAY, in_partitions, outside_reason

__all__ = ["CAPTURE_DAYS", "FIRST_CAPTURE_DAY", "capture_day_problem", "capture_days"]

CAPTURE_DAYS = "capture_days"
"""Name of the dynamic partitions (the instance stores the days under it)."""

capture_days = DynamicPartitionsDefinition(name=CAPTURE_DAYS)


def capture_day_problem(day: str, now: datetime | None = None) -> str | None:
    """Why ``day`` (``YYYY-MM-DD``) cannot be a capture-day partition, or None when it can (the
    core's rule, :func:`sensorfleet.capture_days.in_partitions`)."""
    try:
        date.fromisoformat(day)
    except ValueError:
        return f"capture day {day!r} is not a date YYYY-MM-DD"
    return None if in_partitions(day, now) else outside_reason(day, now).replace(" (filed under today)", "")
