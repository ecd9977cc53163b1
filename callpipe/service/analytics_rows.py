"""Keeping the analytics tables true after an erasure made through the API: the call's rows
leave the tables at once (:meth:`AnalyticsStore.remove_recording`), not at its day's next run."""

from __future__ import annotations

from typing import Any

from callpipe.storage import RecordingStore


def open_writer(store: RecordingStore, url: str | None) -> Any:
    """The analytics store the API writes to (the same place its readers read)."""
    from callpipe.analytics import open_analytics_store, store_local_root

    return open_analytics_store(url, local_root=store_local_root(store))


def remove_rows(store: RecordingStore, url: str | None, recording_id: str) -> bool:
    """Remove every analytics row of ``recording_id``; whether there were any."""
    writer = open_writer(store, url)
    try:
        return bool(writer.remove_recording(recording_id))
    finally:
        writer.close()
