"""The core's rule for which capture days have a partition agrees with the Dagster partitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pipelines.partitions import capture_day_problem
from sensorfleet.capture_days import FIRST_CAPTURE_DAY, filing_day, in_partitions, today_utc


def test_core_rule_is_the_pipelines_rule() -> None:
    today = date.fromisoformat(today_utc())
    first = date.fromisoformat(FIRST_CAPTURE_DAY)
    days = [first - timedelta(days=1), first, first + timedelta(days=1), today - timedelta(days=1), today,
            today + timedelta(days=1), today + timedelta(days=2), date(2099, 1, 1)]
    accepted = [in_partitions(d.isoformat()) for d in days]
    assert accepted == [False, True, True, True, True, True, False, False]
    for day, ok in zip(days, accepted, strict=True):
        assert (capture_day_problem(day.isoformat()) is None) == ok, day
    assert "not a date" in (capture_day_problem("2026-13-45") or "")


def test_filing_day() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert filing_day("2026-03-14", now) == "2026-03-14"
    assert filing_day("2026-12-01", now) == "2026-12-01"  # tomorrow: a station ahead of UTC
    assert filing_day("2026-12-02", now) == "2026-11-30"
    assert filing_day("2019-12-31", now) == "2026-11-30"
    assert not in_partitions("2026-02-30", now) and not in_partitions("20260101", now)
