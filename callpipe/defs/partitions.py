"""One partition per call date, in ``CALLPIPE_TIMEZONE`` (default UTC).

Days, not recordings: Dagster advises at most 100,000 partitions per asset and a run launch
costs seconds, so a run processes every recording of one call date.

The partitions are part of the asset definitions, so ``CALLPIPE_TIMEZONE`` and
``CALLPIPE_START_DATE`` are read when the definitions are built (the first use of
``call_date_partitions``, i.e. when Dagster loads the code location), not when this module is
imported; the helpers below read the time zone on each call.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import dagster as dg

from callpipe.settings import Settings


def call_timezone() -> str:
    """``CALLPIPE_TIMEZONE`` now (default UTC)."""
    return Settings.from_env(only=["CALLPIPE_TIMEZONE"]).callpipe_timezone


def build_call_date_partitions(
    timezone: str | None = None, start_date: str | None = None
) -> dg.DailyPartitionsDefinition:
    """Daily partitions in ``timezone`` (default ``CALLPIPE_TIMEZONE``) from ``start_date`` (default
    ``CALLPIPE_START_DATE``); ``end_offset=1`` makes today's partition exist, so calls arriving
    today can be processed today."""
    settings = Settings.from_env(only=["CALLPIPE_TIMEZONE", "CALLPIPE_START_DATE"])
    return dg.DailyPartitionsDefinition(
        start_date=start_date or settings.callpipe_start_date,
        timezone=timezone or settings.callpipe_timezone,
        end_offset=1,
    )


@cache
def _configured_partitions() -> dg.DailyPartitionsDefinition:
    return build_call_date_partitions()


def __getattr__(name: str) -> object:
    """``call_date_partitions``: the configured partitions, built on first use (PEP 562)."""
    if name == "call_date_partitions":
        return _configured_partitions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def partition_key_for(timestamp: datetime, timezone: str | None = None) -> str:
    """The call-date partition of a (timezone-aware) call timestamp."""
    return timestamp.astimezone(ZoneInfo(timezone or call_timezone())).date().isoformat()


def partition_window(partition_key: str, timezone: str | None = None) -> tuple[datetime, datetime]:
    """``[start, end)`` of a call-date partition as aware datetimes in ``timezone``."""
    day = date.fromisoformat(partition_key)
    zone = ZoneInfo(timezone or call_timezone())
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
