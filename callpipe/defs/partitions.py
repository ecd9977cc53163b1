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

# end_offset=1: today's partition exists, so calls arriving today can be processed today.
call_date_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone=TIMEZONE, end_offset=1)


def partition_key_for(timestamp: datetime) -> str:
    """The call-date partition of a (timezone-aware) call timestamp."""
    return timestamp.astimezone(ZoneInfo(TIMEZONE)).date().isoformat()


def partition_window(partition_key: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a call-date partition as aware datetimes in ``CALLPIPE_TIMEZONE``."""
    day = date.fromisoformat(partition_key)
    zone = ZoneInfo(TIMEZONE)
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
