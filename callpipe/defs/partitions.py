"""One partition per call date, in ``CALLPIPE_TIMEZONE`` (default UTC).

Days, not recordings: Dagster advises at most 100,000 partitions per asset and a run launch
costs seconds, so a run processes every recording of one call date.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

TIMEZONE = os.environ.get("CALLPIPE_TIMEZONE", "UTC") or "UTC"
START_DATE = os.environ.get("CALLPIPE_START_DATE", "2024-01-01") or "2024-01-01"


def build_call_date_partitions(
    timezone: str = TIMEZONE, start_date: str = START_DATE
) -> dg.DailyPartitionsDefinition:
    """Daily partitions in ``timezone``; ``end_offset=1`` makes today's partition exist, so calls
    arriving today can be processed today."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone=timezone, end_offset=1)


call_date_partitions = build_call_date_partitions()


def partition_key_for(timestamp: datetime, timezone: str = TIMEZONE) -> str:
    """The call-date partition of a (timezone-aware) call timestamp."""
    return timestamp.astimezone(ZoneInfo(timezone)).date().isoformat()


def partition_window(partition_key: str, timezone: str = TIMEZONE) -> tuple[datetime, datetime]:
    """``[start, end)`` of a call-date partition as aware datetimes in ``timezone``."""
    day = date.fromisoformat(partition_key)
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
