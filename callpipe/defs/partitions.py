"""One partition per call date, in ``CALLPIPE_TIMEZONE`` (default UTC).

Days, not recordings: Dagster advises at most 100,000 partitions per asset and a run launch
costs seconds, so a run processes every recording of one call date.

The first partition is ``CALLPIPE_START_DATE`` (YYYY-MM-DD). Unset, it is the first day of the
month three months back, read when the definitions load: a new deployment shows a few months of
days in the UI, not years of "missing" partitions. Set it to the first call date of older data to
process that too; recordings dated before it are never processed, and the sensors count and
report them (see :mod:`callpipe.defs.sensors`).
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

START_DATE_ENV = "CALLPIPE_START_DATE"
DEFAULT_MONTHS_BACK = 3


def default_start_date(today: date | None = None) -> str:
    """The first day of the month :data:`DEFAULT_MONTHS_BACK` months before ``today`` (UTC)."""
    today = today or datetime.now(ZoneInfo("UTC")).date()
    month = today.year * 12 + today.month - 1 - DEFAULT_MONTHS_BACK
    return date(month // 12, month % 12 + 1, 1).isoformat()


def configured_start_date(environ: dict[str, str] | None = None) -> str:
    """``CALLPIPE_START_DATE``, else :func:`default_start_date`; ValueError when it is no date."""
    value = ((os.environ if environ is None else environ).get(START_DATE_ENV) or "").strip()
    if not value:
        return default_start_date()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{START_DATE_ENV}={value!r} is not a date (YYYY-MM-DD)") from None


TIMEZONE = os.environ.get("CALLPIPE_TIMEZONE", "UTC") or "UTC"
START_DATE = configured_start_date()


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
