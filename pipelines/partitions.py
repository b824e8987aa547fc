"""Partitions of the asset graph: one per UTC capture day.

A day is the grain of work whatever the fleet size (100,000 sessions a day is still one
partition); the sessions of a day are processed in parallel inside the step.
"""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

from sensorfleet.capture_days import FIRST_CAPTURE_DAY

# The first day is the core's (sensorfleet.capture_days, which files sessions outside the
# partitions as rejections); ``end_offset=1`` adds the current (still open) UTC day so a session
# captured today has a partition.
__all__ = ["FIRST_CAPTURE_DAY", "capture_days"]

capture_days = DailyPartitionsDefinition(
    start_date=FIRST_CAPTURE_DAY,
    timezone="UTC",
    fmt="%Y-%m-%d",
    end_offset=1,
)
