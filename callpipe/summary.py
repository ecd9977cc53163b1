"""What a day of recordings looks like: the work manifest before a run and the documents after it
(the day's summary is computed from the analytics tables, :mod:`callpipe.analytics`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from callpipe.failures import one_line
from callpipe.leases import OwnerCheck
from callpipe.pipeline import PipelineSettings, work_reason
from callpipe.schema import RecordingMetadata
from callpipe.storage import RecordingRef, RecordingStore, StorageError


def day_refs(store: RecordingStore, start: datetime, end: datetime) -> Iterator[RecordingRef]:
    """Index entries of the recordings with ``start <= timestamp < end`` (no document reads)."""
    cursor = None
    until = end - timedelta(microseconds=1)
    while True:
        page = store.list_recordings(since=start, until=until, limit=1000, cursor=cursor)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def day_manifest(
    store: RecordingStore,
    start: datetime,
    end: datetime,
    settings: PipelineSettings,
    is_owner_alive: OwnerCheck | None = None,
) -> dict[str, Any]:
    """Which recordings of the window need offline work, and why; unreadable ones are listed.

    ``is_owner_alive`` voids the leases of runs known to be over (:func:`~callpipe.pipeline.work_reason`).
    """
    work: list[str] = []
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    seen: list[str] = []
    for ref in day_refs(store, start, end):
        seen.append(ref.recording_id)
        try:
            meta = store.get_metadata(ref.recording_id)
        except StorageError as exc:
            errors[ref.recording_id] = one_line(exc)  # shown in the UI: redacted
            reasons["unreadable"] += 1
            continue
        reason = work_reason(meta, settings, is_owner_alive=is_owner_alive)
        if reason is None:
            skipped[ref.recording_id] = meta.status.status.value
            reasons[f"skip: {meta.status.status.value}"] += 1
        else:
            work.append(ref.recording_id)
            reasons[reason] += 1
    return {"all": seen, "work": work, "skipped": skipped, "errors": errors, "reasons": dict(reasons)}


def day_documents(
    store: RecordingStore, start: datetime, end: datetime
) -> tuple[list[RecordingMetadata], dict[str, str]]:
    """Every readable metadata document of the window, and ``{recording_id: error}`` of the others."""
    docs: list[RecordingMetadata] = []
    unreadable: dict[str, str] = {}
    for ref in day_refs(store, start, end):
        try:
            docs.append(store.get_metadata(ref.recording_id))
        except StorageError as exc:
            unreadable[ref.recording_id] = one_line(exc)
    return docs, unreadable
