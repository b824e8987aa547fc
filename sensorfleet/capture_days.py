"""The capture days the pipeline accepts, as a core rule (no Dagster): the one rule behind the
ingest (a session whose day is outside is a rejection filed under :func:`filing_day`), the
landing sensor and ``pipeline run`` (``pipelines.partitions.capture_day_problem``), which add a
dynamic partition only for an accepted day.

Accepted: :data:`FIRST_CAPTURE_DAY` to tomorrow UTC (a station a few hours ahead of UTC is not
an error); anything else is a station's clock or a manifest's ``captured_at``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

# Fixed and early, so every real or synthetic capture falls inside.
FIRST_CAPTURE_DAY = "2020-01-01"


def today_utc(now: datetime | None = None) -> str:
    """The current UTC calendar day, ``YYYY-MM-DD``."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")


def last_accepted_day(now: datetime | None = None) -> str:
    """The latest accepted capture day: tomorrow UTC."""
    return (date.fromisoformat(today_utc(now)) + timedelta(days=1)).isoformat()


def in_partitions(day: str, now: datetime | None = None) -> bool:
    """True when ``day`` (``YYYY-MM-DD``) is an accepted capture day:
    ``FIRST_CAPTURE_DAY <= day <= tomorrow`` (UTC). A string that is not a calendar day is not."""
    try:
        parsed = date.fromisoformat(day)
    except (TypeError, ValueError):
        return False
    return day == parsed.isoformat() and FIRST_CAPTURE_DAY <= day <= last_accepted_day(now)


def filing_day(day: str, now: datetime | None = None) -> str:
    """Where a session of capture ``day`` is filed: its own day when it has a partition, else
    today (UTC), where the rejection that explains it is seen by whoever looks at recent runs."""
    return day if in_partitions(day, now) else today_utc(now)


def outside_reason(day: str, now: datetime | None = None) -> str:
    """Why a session of ``day`` is refused, naming the valid range."""
    return (
        f"capture day {day} is outside the accepted range ({FIRST_CAPTURE_DAY} to {last_accepted_day(now)}, "
        "tomorrow UTC); "
        "check the station's clock or the manifest's captured_at (filed under today)"
    )
