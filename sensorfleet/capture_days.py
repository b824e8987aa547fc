"""The capture days the pipeline has partitions for, as a core rule (no Dagster).

``pipelines/partitions.py`` builds its daily partitions from :data:`FIRST_CAPTURE_DAY` (UTC,
``end_offset=1``: the current UTC day included), and the ingest uses :func:`in_partitions` to
file a session whose day has no partition (a station clock in the future, data before 2020)
as a rejection under :func:`filing_day` instead of failing a run. A test checks that both agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

# Fixed and early, so every real or synthetic capture falls inside.
FIRST_CAPTURE_DAY = "2020-01-01"


def today_utc(now: datetime | None = None) -> str:
    """The current UTC calendar day, ``YYYY-MM-DD`` (the last day with a partition)."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")


def in_partitions(day: str, now: datetime | None = None) -> bool:
    """True when ``day`` (``YYYY-MM-DD``) has a partition: ``FIRST_CAPTURE_DAY <= day <= today``
    (UTC). A string that is not a calendar day has none."""
    try:
        parsed = date.fromisoformat(day)
    except (TypeError, ValueError):
        return False
    return day == parsed.isoformat() and FIRST_CAPTURE_DAY <= day <= today_utc(now)


def filing_day(day: str, now: datetime | None = None) -> str:
    """Where a session of capture ``day`` is filed: its own day when it has a partition, else
    today (UTC), where the rejection that explains it is seen by whoever looks at recent runs."""
    return day if in_partitions(day, now) else today_utc(now)


def outside_reason(day: str, now: datetime | None = None) -> str:
    """Why a session of ``day`` is refused, naming the valid range."""
    return (
        f"capture day {day} is outside the partitions ({FIRST_CAPTURE_DAY} to {today_utc(now)} UTC); "
        "check the station's clock or the manifest's captured_at (filed under today)"
    )
