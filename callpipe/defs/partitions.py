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

from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import dagster as dg

from callpipe.settings import Settings

DEFAULT_MONTHS_BACK = 3


def call_timezone() -> str:
    """``CALLPIPE_TIMEZONE`` now (default UTC)."""
    return Settings.from_env(only=["CALLPIPE_TIMEZONE"]).callpipe_timezone


def default_start_date(today: date | None = None) -> str:
    """The first day of the month :data:`DEFAULT_MONTHS_BACK` months before ``today`` (UTC)."""
    today = today or datetime.now(ZoneInfo("UTC")).date()
    month = today.year * 12 + today.month - 1 - DEFAULT_MONTHS_BACK
    return date(month // 12, month % 12 + 1, 1).isoformat()


def configured_start_date(environ: dict[str, str] | None = None) -> str:
    """``CALLPIPE_START_DATE``, else :func:`default_start_date`; a one-line error when it is no date."""
    value = Settings.from_env(environ, only=["CALLPIPE_START_DATE"]).callpipe_start_date
    return value or default_start_date()


def build_call_date_partitions(
    timezone: str | None = None, start_date: str | None = None
) -> dg.DailyPartitionsDefinition:
    """Daily partitions in ``timezone`` (default ``CALLPIPE_TIMEZONE``) from ``start_date`` (default
    ``CALLPIPE_START_DATE``); ``end_offset=1`` makes today's partition exist, so calls arriving
    today can be processed today."""
    return dg.DailyPartitionsDefinition(
        start_date=start_date or configured_start_date(),
        timezone=timezone or call_timezone(),
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
