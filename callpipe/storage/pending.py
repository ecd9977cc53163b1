"""The pending recordings from the names of their markers (see :mod:`callpipe.storage.index`):
ids and UTC times of day by call date without reading anything, and entries by id.

These are behind :class:`~callpipe.storage.blob_store.BlobStore`'s ``list_pending_ids``,
``pending_ids_by_date``, ``pending_times_by_date`` and ``pending_refs``; the unprocessed sensor
calls them every tick.
"""

from __future__ import annotations

import logging
import re
from datetime import time
from typing import TYPE_CHECKING

from callpipe.storage import index
from callpipe.storage.base import RecordingRef
from callpipe.storage.errors import MetadataCorruptError
from callpipe.storage.ids import validate_date, validate_id

if TYPE_CHECKING:
    from callpipe.storage.blob_store import BlobStore

log = logging.getLogger(__name__)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def pending_ids(store: BlobStore, call_date: str) -> list[str]:
    """Behind :meth:`RecordingStore.list_pending_ids`: ids from the marker names of one date."""
    return sorted(index.marker_ids(store._list_names(f"{index.PENDING}/{validate_date(call_date)}")))


def pending_refs(store: BlobStore, call_date: str, ids: list[str]) -> list[RecordingRef]:
    """Behind :meth:`RecordingStore.pending_refs`, in id order: each id's marker read by its legacy
    name (the sensor asks only for markers listed without a time), nothing listed; for ids not
    found there, one listing of the date's names finds their current names (which hold the time)."""
    base = f"{index.PENDING}/{validate_date(call_date)}"
    wanted = [validate_id(rid) for rid in ids]
    refs, missing = _read_markers(store, base, wanted)
    if missing:
        names = index.unique_markers(store._list_names(base))
        found = {
            parsed[0]: name for name in names if (parsed := index.parse_pending_name(name)) and parsed[1]
        }
        refs += _read_markers(store, base, [found[rid] for rid in missing if rid in found])[0]
    return sorted(refs, key=lambda ref: ref.recording_id)


def _read_markers(store: BlobStore, base: str, names: list[str]) -> tuple[list[RecordingRef], list[str]]:
    """Refs of the markers ``base/{name}`` (in parallel on S3), and the names not found."""
    refs: list[RecordingRef] = []
    missing: list[str] = []
    for chunk in (names[start : start + 256] for start in range(0, len(names), 256)):
        for name, raw in zip(chunk, store._get_many([f"{base}/{n}" for n in chunk]), strict=True):
            if raw is None:
                missing.append(name)
                continue
            try:
                refs.append(index.Entry.parse(raw, store._uri(f"{base}/{name}")).ref(False))
            except MetadataCorruptError as exc:
                log.warning("%s", exc)
    return refs, missing


def pending_times_by_date(store: BlobStore) -> dict[str, list[tuple[str, time | None]]]:
    """Behind :meth:`RecordingStore.pending_times_by_date`: one recursive listing of the markers'
    names (on S3 one request per 1,000 markers rather than one or more per date), nothing read."""
    by_date: dict[str, dict[str, time | None]] = {}
    for key, _size in store._walk(index.PENDING):
        day, sep, name = key.removeprefix(f"{index.PENDING}/").partition("/")
        if not sep or not _DAY.fullmatch(day) or (parsed := index.parse_pending_name(name)) is None:
            continue
        rid, clock = parsed
        times = by_date.setdefault(day, {})
        if times.get(rid) is None:  # both names (a crash between two writes): the current one
            times[rid] = clock
    return {day: sorted(times.items()) for day, times in sorted(by_date.items())}


def pending_ids_by_date(store: BlobStore) -> dict[str, list[str]]:
    """Behind :meth:`RecordingStore.pending_ids_by_date`: :func:`pending_times_by_date` without times."""
    return {day: [rid for rid, _ in items] for day, items in pending_times_by_date(store).items()}
