"""Pending ids from key names alone, and listing bounds given in any timezone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest

from callpipe.storage import MirroredStore, RecordingStore, S3Store, index
from callpipe.storage.blob_store import BlobStore
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
    """By the name without the time first (what the sensor asks for), else found by one listing."""
    a, b, c = (_save(store, NEXT + timedelta(minutes=n), n) for n in range(3))
    store.modify_metadata(b, lambda d: d.model_copy(update={"processed": True}))
    _to_legacy(store, c)
    refs = store.pending_refs("2026-11-27", [c, a, b])
    assert [(r.recording_id, r.timestamp, r.processed) for r in refs] == [
        (a, NEXT, False),
        (c, NEXT + timedelta(minutes=2), False),
    ]
    if isinstance(store, S3Store):
        day = "callpipe/dev/index/pending/2026-11-27/"
        with _requests(store) as calls:
            store.pending_refs("2026-11-27", [c])
        assert calls == [("GetObject", f"{day}{c}")]  # no listing
        with _requests(store) as calls:
            store.pending_refs("2026-11-27", [a, b])
        expected = [("GetObject", f"{day}{a}"), ("GetObject", f"{day}{b}"), ("ListObjectsV2", day)]
        assert sorted(calls) == sorted([*expected, ("GetObject", f"{day}{a}!090000")])


def test_marker_names_hold_the_utc_time_of_day(store: RecordingStore) -> None:
    """Given in Madrid (UTC+1 in November), the call is stored by its UTC date and time."""
    madrid = timezone(timedelta(hours=1))
    a = _save(store, datetime(2026, 11, 27, 0, 30, 15, 999_999, tzinfo=madrid), 1)  # 11-26 23:30:15 UTC
    b = _save(store, datetime(2026, 11, 27, 10, 0, tzinfo=madrid), 2)
    by_date = {"2026-11-26": [(a, time(23, 30, 15))], "2026-11-27": [(b, time(9))]}
    assert store.pending_times_by_date() == by_date
    assert _backend(store)._list_names("index/pending/2026-11-26") == [f"{a}!233015"]
    if isinstance(store, S3Store):
        with _requests(store) as calls:
            store.pending_times_by_date()
        assert calls == [("ListObjectsV2", "callpipe/dev/index/pending/")]


def _backend(store: RecordingStore) -> BlobStore:
    return store.local if isinstance(store, MirroredStore) else store  # type: ignore[return-value]


def _to_legacy(store: RecordingStore, rid: str) -> str:
    """Rename a recording's marker to the layout of stores written before names held the time."""
    backend = _backend(store)
    current, legacy = index.pending_keys(backend._entry(rid))
    backend._put(legacy, backend._get(current))
    backend._delete(current)
    return legacy


def test_legacy_markers_are_listed_found_and_healed(store: RecordingStore) -> None:
    backend = _backend(store)
    old, kept, done, gone, new = (_save(store, NEXT + timedelta(minutes=n), n) for n in range(5))
    for rid in (old, kept, done, gone):
        _to_legacy(store, rid)
    dup = index.pending_key(backend._entry(new))  # both names, as a crash between two writes leaves
    backend._put(index.legacy_pending_key("2026-11-27", new), backend._get(dup))
    everyone = sorted([old, kept, done, gone, new])

    assert store.list_pending_ids("2026-11-27") == everyone
    times = dict(store.pending_times_by_date()["2026-11-27"])
    assert times == {old: None, kept: None, done: None, gone: None, new: time(9, 4)}
    refs = store.pending_refs("2026-11-27", [old, new])
    assert [(r.recording_id, r.timestamp) for r in refs] == [(old, NEXT), (new, NEXT + timedelta(minutes=4))]
    paged, cursor = [], None
    while True:  # old and new names in one id order, each recording once
        page = store.list_recordings(processed=False, limit=2, cursor=cursor)
        paged += [ref.recording_id for ref in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert paged == everyone
    assert [d.recording_id for d in store.iter_recordings("2026-11-27", processed=False)] == everyone
    assert store.get_storage_stats()["pending"] == 5
    assert not store.list_recordings(conversation_id="c1").items[0].processed

    store.modify_metadata(old, lambda d: d.model_copy(update={"extra": {"note": "touched"}}))
    store.modify_metadata(new, lambda d: d.model_copy(update={"extra": {"note": "touched"}}))
    store.modify_metadata(done, lambda d: d.model_copy(update={"processed": True}))
    store.delete_recording(gone)
    assert backend._list_names("index/pending/2026-11-27") == sorted([f"{old}!090000", kept, f"{new}!090400"])
    assert dict(store.pending_times_by_date()["2026-11-27"]) == {old: time(9), kept: None, new: time(9, 4)}
