"""The core's rule for which capture days have a partition agrees with the Dagster partitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pipelines.partitions import capture_days
from sensorfleet.capture_days import FIRST_CAPTURE_DAY, filing_day, in_partitions, today_utc


def test_core_rule_matches_the_daily_partitions() -> None:
    today = date.fromisoformat(today_utc())
    first = date.fromisoformat(FIRST_CAPTURE_DAY)
    days = [first - timedelta(days=1), first, first + timedelta(days=1), today - timedelta(days=1), today,
            today + timedelta(days=1), date(2099, 1, 1)]
    for day in days:
        key = day.isoformat()
        assert in_partitions(key) == capture_days.has_partition_key(key), key
    assert capture_days.get_first_partition_key() == FIRST_CAPTURE_DAY


def test_filing_day() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert filing_day("2026-03-14", now) == "2026-03-14"
    assert filing_day("2026-12-01", now) == "2026-11-30"
    assert filing_day("2019-12-31", now) == "2026-11-30"
    assert not in_partitions("2026-02-30", now) and not in_partitions("20260101", now)
