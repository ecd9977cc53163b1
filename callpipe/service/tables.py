"""Keeping the analytics tables true after an erasure made through the API.

An erased call must leave the call list at once, not at the next run of its day: the day's rows
are rebuilt from the documents still in the store (:func:`callpipe.analytics.rows_for_day`, as
the ``call_analytics`` asset builds them) and replace the day's rows.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

from callpipe.storage import RecordingStore


def open_writer(store: RecordingStore, url: str | None) -> Any:
    """The analytics store the API writes to (same place its readers read)."""
    from callpipe.analytics import open_analytics_store, store_local_root

    return open_analytics_store(url, local_root=store_local_root(store))


def rebuild_day(store: RecordingStore, url: str | None, call_date: str) -> int:
    """Replace the rows of ``call_date`` (in ``CALLPIPE_TIMEZONE``) with rows of the documents now
    in the store; returns the number of calls the day keeps."""
    from callpipe.analytics import rows_for_day
    from callpipe.analytics.columns import local_date

    timezone = os.environ.get("CALLPIPE_TIMEZONE") or "UTC"
    day = date.fromisoformat(str(call_date)[:10])
    docs = []
    for utc_day in (day - timedelta(days=1), day, day + timedelta(days=1)):
        for doc in store.iter_recordings(utc_day.isoformat()):
            if local_date(doc.timestamp, timezone) == day.isoformat():
                docs.append(doc)
    calls, turns, entities = rows_for_day(docs, timezone=timezone)
    writer = open_writer(store, url)
    try:
        writer.replace_day(day.isoformat(), calls, turns, entities)
    finally:
        writer.close()
    return len(calls)
