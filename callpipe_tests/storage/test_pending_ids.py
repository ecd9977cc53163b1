"""Pending ids from key names alone, and listing bounds given in any timezone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from callpipe.storage import RecordingStore, S3Store
from callpipe_tests.storage.conftest import make_wav

LATE = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
NEXT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _save(store: RecordingStore, ts: datetime, seed: int) -> str:
    return store.save_recording(make_wav(seconds=0.1, seed=seed), "c1", {"timestamp": ts}).recording_id


@contextmanager
def _requests(store: S3Store) -> Iterator[list[tuple[str, str]]]:
    """(operation, key or prefix) of every request the store's client sends meanwhile."""
    calls: list[tuple[str, str]] = []

    def on_call(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params.get("Key") or params.get("Prefix") or ""))

    store.client.meta.events.register("provide-client-params.s3.*", on_call)
    try:
        yield calls
    finally:
        store.client.meta.events.unregister("provide-client-params.s3.*", on_call)


def test_pending_ids_by_utc_date(store: RecordingStore) -> None:
    a, b, c = (_save(store, ts, n) for n, ts in enumerate((LATE, NEXT, NEXT + timedelta(hours=1))))
    assert store.pending_ids_by_date() == {"2026-11-26": [a], "2026-11-27": sorted([b, c])}
    assert store.list_pending_ids("2026-11-27") == sorted([b, c])
    assert store.list_pending_ids("2026-11-28") == []
    store.modify_metadata(a, lambda d: d.model_copy(update={"processed": True}))
    assert store.pending_ids_by_date() == {"2026-11-27": sorted([b, c])}
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        store.list_pending_ids("../x")


def test_s3_pending_ids_are_one_listing_without_reads(s3_store: S3Store) -> None:
    ids = sorted(_save(s3_store, ts, n) for n, ts in enumerate((LATE, NEXT, NEXT + timedelta(hours=1))))
    with _requests(s3_store) as calls:
        by_date = s3_store.pending_ids_by_date()
    assert sorted(i for day in by_date.values() for i in day) == ids
    assert calls == [("ListObjectsV2", "callpipe/dev/index/pending/")]


def test_bounds_in_another_timezone_select_utc_dates(store: RecordingStore) -> None:
    late = _save(store, LATE, 1)  # call date (UTC) 2026-11-26
    early = _save(store, LATE + timedelta(hours=1, minutes=30), 2)  # 2026-11-27 01:00 UTC
    since = datetime(2026, 11, 27, 0, 15, tzinfo=timezone(timedelta(hours=1)))  # 11-26 23:15 UTC
    assert [r.recording_id for r in store.list_recordings(since=since).items] == [late, early]
    until = datetime(2026, 11, 26, 20, 0, tzinfo=timezone(timedelta(hours=-6)))  # 11-27 02:00 UTC
    assert [r.recording_id for r in store.list_recordings(until=until).items] == [late, early]


def test_s3_page_reads_only_what_it_returns(s3_store: S3Store) -> None:
    for n in range(6):
        _save(s3_store, NEXT + timedelta(minutes=n), n)
    with _requests(s3_store) as calls:
        page = s3_store.list_recordings(processed=False, limit=2)
    assert len(page.items) == 2 and page.next_cursor
    assert len([op for op, _ in calls if op == "GetObject"]) == 3  # the page, plus one to know there's more


def test_pending_refs_read_markers_by_id(store: RecordingStore) -> None:
    a, b = (_save(store, NEXT + timedelta(minutes=n), n) for n in range(2))
    store.modify_metadata(b, lambda d: d.model_copy(update={"processed": True}))
    refs = store.pending_refs("2026-11-27", [a, b])
    assert [(r.recording_id, r.timestamp, r.processed) for r in refs] == [(a, NEXT, False)]
    if isinstance(store, S3Store):
        with _requests(store) as calls:
            store.pending_refs("2026-11-27", [a, b])
        assert sorted(op for op, _ in calls) == ["GetObject", "GetObject"]  # no listing
