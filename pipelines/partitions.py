"""Partitions of the asset graph: one per UTC capture day that has data.

A day is the grain of work whatever the fleet size (100,000 sessions a day is still one
partition); the sessions of a day are processed in parallel inside the step. The partitions are
dynamic: the landing sensor and ``pipeline run`` add a day when they first run it, so the UI
lists the days that hold data, not every calendar day since a fixed start (docs/architecture.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import DynamicPartitionsDefinition

FIRST_CAPTURE_DAY = "2020-01-01"
"""Earliest capture day accepted: a capture before it is a station clock gone wrong."""

CAPTURE_DAYS = "capture_days"
"""Name of the dynamic partitions (the instance stores the days under it)."""

capture_days = DynamicPartitionsDefinition(name=CAPTURE_DAYS)


def capture_day_problem(day: str, today: date | None = None) -> str | None:
    """Why ``day`` (``YYYY-MM-DD``) cannot be a capture-day partition, or None when it can.

    Accepted: from :data:`FIRST_CAPTURE_DAY` to tomorrow UTC (a station a few hours ahead of UTC
    is not an error); anything else is a station's clock or a manifest's ``captured_at``.
    """
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        return f"capture day {day!r} is not a date YYYY-MM-DD"
    last = (today or datetime.now(UTC).date()) + timedelta(days=1)
    if not date.fromisoformat(FIRST_CAPTURE_DAY) <= parsed <= last:
        return (
            f"capture day {day} is outside the accepted range ({FIRST_CAPTURE_DAY} to {last.isoformat()}, "
            "tomorrow UTC); check the capture station's clock or the manifests' captured_at"
        )
    return None
