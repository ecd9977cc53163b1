"""Listing from the index: filters, paging, pending dates, damaged files, leftovers of crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callpipe.storage import (
    ListingError,
    LocalStore,
    MetadataCorruptError,
    RecordingStore,
    S3Store,
)
from callpipe_tests.storage.conftest import make_wav

DAY1 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _fill(store: RecordingStore) -> dict[str, Any]:
    """Seven recordings on two days, three conversations; two processed."""
    ids: dict[str, Any] = {}
    plan = [
        ("a", DAY1, "c1"),
        ("b", DAY1 + timedelta(hours=1), "c2"),
        ("c", DAY1 + timedelta(hours=2), "c1"),
        ("d", DAY2, "c3"),
        ("e", DAY2 + timedelta(minutes=30), "c1"),
        ("f", DAY2 + timedelta(hours=5), "c2"),
        ("g", DAY2 + timedelta(hours=6), "c3"),
    ]
    for seed, (name, ts, conv) in enumerate(plan):
        ids[name] = store.save_recording(make_wav(seed=seed), conv, {"timestamp": ts}).recording_id
    for name in ("b", "e"):
        store.modify_metadata(ids[name], lambda d: d.model_copy(update={"processed": True}))
    return ids


def _ids(page: Any) -> list[str]:
    return [ref.recording_id for ref in page.items]


def test_filters_and_paging(store: RecordingStore) -> None:
    ids = _fill(store)
    order = [ids[n] for n in "abcdefg"]
    page = store.list_recordings()
    assert _ids(page) == order and page.next_cursor is None and page.errors == []
    first = page.items[0]
    assert (first.conversation_id, first.call_date, first.timestamp, first.processed) == (
        "c1",
        "2026-11-26",
        DAY1,
        False,
    )
    assert _ids(store.list_recordings(processed=False)) == [ids[n] for n in "acdfg"]
    assert _ids(store.list_recordings(processed=True)) == [ids["b"], ids["e"]]
    assert _ids(store.list_recordings(conversation_id="c1")) == [ids[n] for n in "ace"]
    assert _ids(store.list_recordings(conversation_id="c1", processed=True)) == [ids["e"]]
    assert _ids(store.list_recordings(conversation_id="nobody")) == []
    window = store.list_recordings(since=DAY1 + timedelta(minutes=30), until=DAY2 + timedelta(minutes=30))
    assert _ids(window) == [ids[n] for n in "bcde"]
    assert _ids(store.list_recordings(since=DAY2, processed=False)) == [ids[n] for n in "dfg"]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list_recordings(limit=3, cursor=cursor)
        seen += _ids(page)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == order and pages == 3
    pending_pages = store.list_recordings(processed=False, limit=2)
    rest = store.list_recordings(processed=False, limit=2, cursor=pending_pages.next_cursor)
    assert _ids(pending_pages) + _ids(rest) == [ids[n] for n in "acdf"]

    assert store.list_pending_dates() == ["2026-11-26", "2026-11-27"]
    for name in "acd":
        store.modify_metadata(ids[name], lambda d: d.model_copy(update={"processed": True}))
    assert store.list_pending_dates() == ["2026-11-27"]
    # reprocessing puts the day back
    store.modify_metadata(ids["a"], lambda d: d.model_copy(update={"processed": False}))
    assert store.list_pending_dates() == ["2026-11-26", "2026-11-27"]

    docs = list(store.iter_recordings("2026-11-27"))
    assert [d.recording_id for d in docs] == [ids[n] for n in "defg"]
    assert [d.recording_id for d in store.iter_recordings("2026-11-27", processed=False)] == [
        ids["f"],
        ids["g"],
    ]


def test_bad_listing_arguments(local_store: LocalStore) -> None:
    with pytest.raises(ValueError, match="cursor"):
        local_store.list_recordings(cursor="garbage")
    with pytest.raises(ValueError, match="timezone-aware"):
        local_store.list_recordings(since=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        local_store.list_recordings(limit=0)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        list(local_store.iter_recordings("../etc"))


def test_local_listing_reads_no_metadata(local_store: LocalStore) -> None:
    """Every metadata document destroyed: the index still answers every listing."""
    ids = _fill(local_store)
    for path in (local_store.root / "metadata").rglob("*.json"):
        path.write_bytes(b'{"schema_version": 2, "recording_id": "tru')
    assert _ids(local_store.list_recordings(processed=False)) == [ids[n] for n in "acdfg"]
    assert _ids(local_store.list_recordings(conversation_id="c2")) == [ids["b"], ids["f"]]
    assert local_store.list_pending_dates() == ["2026-11-26", "2026-11-27"]
    stats = local_store.get_storage_stats()
    assert (stats["recordings"], stats["pending"]) == (7, 5)


def test_s3_pending_listing_touches_only_markers(s3_store: S3Store) -> None:
    ids = _fill(s3_store)
    fetched: list[str] = []
    listed: list[str] = []

    def on_call(params: dict[str, Any], model: Any, **_: Any) -> None:
        (fetched if model.name == "GetObject" else listed).append(params.get("Key") or params.get("Prefix"))

    s3_store.client.meta.events.register("provide-client-params.s3.*", on_call)
    try:
        assert s3_store.list_pending_dates() == ["2026-11-26", "2026-11-27"]
        assert fetched == []
        page = s3_store.list_recordings(processed=False)
    finally:
        s3_store.client.meta.events.unregister("provide-client-params.s3.*", on_call)
    assert _ids(page) == [ids[n] for n in "acdfg"]
    assert fetched and all(key.startswith("callpipe/dev/index/pending/") for key in fetched)
    assert all(prefix.startswith("callpipe/dev/index/pending/") for prefix in listed)


def test_corrupt_metadata_is_reported_not_fatal(store: RecordingStore) -> None:
    ids = _fill(store)
    victim = ids["d"]
    _truncate_metadata(store, victim)
    with pytest.raises(MetadataCorruptError, match=victim) as info:
        store.get_metadata(victim)
    assert f"{victim}.json" in str(info.value)
    page = store.list_recordings()
    assert len(page.items) == 7  # the index still lists it
    errors: list[ListingError] = []
    docs = list(store.iter_recordings("2026-11-27", errors=errors))
    assert [d.recording_id for d in docs] == [ids[n] for n in "efg"]
    assert len(errors) == 1 and errors[0].recording_id == victim and victim in errors[0].path


def test_corrupt_index_entry_is_reported(store: RecordingStore) -> None:
    ids = _fill(store)
    key = f"index/by-date/2026-11-26/{ids['b']}"
    _overwrite(store, key, b'{"recording_id": "b", "conv')
    page = store.list_recordings()
    assert _ids(page) == [ids[n] for n in "acdefg"]
    assert len(page.errors) == 1 and page.errors[0].recording_id == ids["b"]
    assert "corrupt" in page.errors[0].message


def _backend(store: RecordingStore) -> LocalStore | S3Store:
    return store if isinstance(store, LocalStore | S3Store) else store.local  # type: ignore[attr-defined]


def _overwrite(store: RecordingStore, key: str, data: bytes) -> None:
    backend = _backend(store)
    if isinstance(backend, LocalStore):
        backend.path(key).write_bytes(data)
    else:
        backend.client.put_object(Bucket=backend.bucket, Key=backend.full_key(key), Body=data)


def _truncate_metadata(store: RecordingStore, recording_id: str) -> None:
    backend = _backend(store)
    key = backend.metadata_key(backend._entry(recording_id))
    raw = backend._get(key)
    _overwrite(store, key, raw[: len(raw) // 2])


def test_crashed_write_leaves_no_visible_trace(local_store: LocalStore) -> None:
    """A writer killed between writing its temp file and renaming it: the old document stays whole,
    the leftover temp file is not listed, and the recording's lock is free again."""
    ids = _fill(local_store)
    rid = ids["a"]
    before = local_store.get_metadata(rid)
    script = textwrap.dedent(
        f"""
        import os
        from callpipe.storage import LocalStore
        store = LocalStore({str(local_store.root)!r})
        doc = store.get_metadata({rid!r})
        doc.transcription.text = "never lands"
        real_replace = os.replace
        def crash_before_rename(src, dst):
            if str(dst).endswith(".json"):
                os._exit(3)
            real_replace(src, dst)
        os.replace = crash_before_rename
        store.update_metadata({rid!r}, doc)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=120)
    assert proc.returncode == 3
    meta_dir = local_store.root / "metadata" / "c1"
    leftovers = [p.name for p in meta_dir.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{rid}.json.")
    assert local_store.get_metadata(rid) == before
    # leftovers in the index directories are skipped too
    (local_store.root / "index" / "by-date" / "2026-11-26" / f".{rid}.deadbeef.tmp").write_bytes(b"{")
    (local_store.root / "index" / "pending" / "2026-11-30").mkdir(parents=True)
    (local_store.root / "index" / "pending" / "2026-11-30" / ".x.tmp").write_bytes(b"")
    page = local_store.list_recordings()
    assert len(page.items) == 7 and page.errors == []
    assert local_store.list_pending_dates() == ["2026-11-26", "2026-11-27"]
    assert local_store.get_storage_stats()["recordings"] == 7
    before.transcription.text = "after the crash"
    assert local_store.update_metadata(rid, before).revision == before.revision + 1


def test_stale_pending_marker_heals(store: RecordingStore) -> None:
    """A marker left behind (crash between the document write and the marker removal) makes the
    day look pending; iterating the day's pending work drops it."""
    ids = _fill(store)
    rid = ids["b"]  # processed
    _overwrite(store, f"index/pending/2026-11-26/{rid}", _backend(store)._get(f"index/by-id/{rid}"))
    assert rid in _ids(store.list_recordings(processed=False))
    pending = [d.recording_id for d in store.iter_recordings("2026-11-26", processed=False)]
    assert pending == [ids["a"], ids["c"]]
    assert rid not in _ids(store.list_recordings(processed=False))
