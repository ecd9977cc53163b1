"""The catalog of recordings on real SQLite and real PostgreSQL: primary key, concurrent saves,
rebuild from the documents, stats that agree with the listing, erasure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from callpipe.catalog import Catalog
from callpipe.catalog.catalog_table import SAVED, SAVING, row_from_doc
from callpipe.catalog.cataloged import CatalogStore
from callpipe.catalog.rebuild import rebuild_catalog
from callpipe.erasure import erase
from callpipe.schema import RecordingMetadata
from callpipe.storage import LocalStore, RecordingExistsError, RecordingStore, StorageSettings, build_store
from callpipe_tests.services import fresh_postgres_database
from callpipe_tests.storage.conftest import make_wav


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        yield Catalog(path=tmp_path / "state" / "catalog.sqlite")
        return
    with fresh_postgres_database() as dsn:
        cat = Catalog(dsn=dsn)
        yield cat
        cat.close()


@pytest.fixture
def store(catalog: Catalog, tmp_path: Path) -> CatalogStore:
    return CatalogStore(LocalStore(tmp_path / "store"), catalog)


def _save(store: RecordingStore, rid: str, conv: str = "conv-1", day: int = 1) -> None:
    meta = {"recording_id": rid, "timestamp": f"2026-03-{day:02d}T10:00:00+00:00"}
    store.save_recording(make_wav(seed=hash(rid) % 1000), conv, meta, recording_id=rid)


def test_primary_key_refuses_a_second_row(catalog: Catalog) -> None:
    doc = RecordingMetadata(recording_id="rec-a", conversation_id="c")
    catalog.claim(row_from_doc(doc, SAVING))
    with pytest.raises(Exception, match="rec-a"):
        catalog.claim(row_from_doc(doc, SAVING))
    assert catalog.get("rec-a").save_state == SAVING  # type: ignore[union-attr]


def test_saved_call_is_listed_pending_and_counted(store: CatalogStore) -> None:
    _save(store, "rec-1")
    page = store.list_recordings(processed=False)
    assert [r.recording_id for r in page.items] == ["rec-1"]
    assert store.catalog.get("rec-1").save_state == SAVED  # type: ignore[union-attr]
    assert store.pending_ids_by_date() == {"2026-03-01": ["rec-1"]}
    with pytest.raises(RecordingExistsError):
        _save(store, "rec-1")
    stats = store.get_storage_stats()
    assert (stats["recordings"], stats["pending"], stats["processed"]) == (1, 1, 0)


def test_concurrent_saves_of_one_id_store_it_once(store: CatalogStore) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        try:
            _save(store, "rec-same")
            outcomes.append("saved")
        except RecordingExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["exists"] * 7 + ["saved"]
    assert [r.recording_id for r in store.list_recordings().items] == ["rec-same"]


def test_concurrent_saves_of_many_ids_all_listed(store: CatalogStore) -> None:
    def work(n: int) -> None:
        for i in range(5):
            _save(store, f"rec-{n}-{i}", conv=f"conv-{n}", day=1 + i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get_storage_stats()["recordings"] == 20
    assert len(store.list_recordings(limit=100).items) == 20


def test_stats_agree_with_listing_and_processed_comes_from_state(store: CatalogStore) -> None:
    for i in range(6):
        _save(store, f"rec-{i}", day=1 + i % 3)
    for rid in ("rec-0", "rec-4"):
        store.modify_metadata(rid, lambda m: setattr(m, "processed", True))
    stats = store.get_storage_stats()
    listed_pending = store.list_recordings(processed=False).items
    listed_done = store.list_recordings(processed=True).items
    assert stats["pending"] == len(listed_pending) == 4
    assert stats["processed"] == len(listed_done) == 2
    assert sorted(r.recording_id for r in listed_done) == ["rec-0", "rec-4"]
    page1 = store.list_recordings(limit=4)
    page2 = store.list_recordings(limit=4, cursor=page1.next_cursor)
    assert len(page1.items) + len(page2.items) == 6 and page2.next_cursor is None


def test_rebuild_equals_original(store: CatalogStore) -> None:
    for i in range(5):
        _save(store, f"rec-{i}", conv=f"conv-{i % 2}", day=1 + i)
    store.request_reprocess("rec-1")
    store.modify_metadata("rec-2", lambda m: setattr(m, "processed", True))
    before = {r.recording_id: r for r in store.catalog.page(limit=100)}
    store.catalog.replace_all([])  # the catalog lost
    assert store.list_recordings().items == []
    report = rebuild_catalog(store)
    after = {r.recording_id: r for r in store.catalog.page(limit=100)}
    assert report.rows == 5 and not report.errors
    assert after == before


def test_erasure_removes_the_row(store: CatalogStore) -> None:
    _save(store, "rec-1")
    _save(store, "rec-2")
    receipt = erase(store, recording_id="rec-1")
    assert receipt.complete
    assert store.catalog.get("rec-1") is None
    assert [r.recording_id for r in store.list_recordings().items] == ["rec-2"]
    store.delete_recording("rec-2")
    assert store.get_storage_stats()["recordings"] == 0


def test_settings_build_a_catalogued_store(tmp_path: Path) -> None:
    store = build_store(StorageSettings(local_path=str(tmp_path / "root")))  # on by default
    assert isinstance(store, CatalogStore)
    assert (tmp_path / "root" / "state" / "catalog.sqlite").exists()
    off = build_store(StorageSettings(local_path=str(tmp_path / "root2"), catalog="off"))
    assert isinstance(off, LocalStore)
    assert not (tmp_path / "root2" / "state").exists()


def test_an_s3_only_catalog_lives_in_the_state_dir(tmp_path: Path) -> None:
    from callpipe.catalog import catalog_path

    s3 = StorageSettings(backend="s3", s3_bucket="calls", s3_prefix="p", state_dir=str(tmp_path / "st"))
    where = catalog_path(s3)
    assert where.parent == tmp_path / "st" and where.name.startswith("catalog-")
    other = catalog_path(s3.model_copy(update={"s3_prefix": "q"}))
    assert other != where  # one catalog per bucket and prefix
    unset = catalog_path(s3.model_copy(update={"state_dir": None}))
    assert not unset.is_relative_to(Path.cwd()) and unset.name == where.name


def test_a_store_written_before_the_catalog_is_filled_at_first_open(tmp_path: Path) -> None:
    older = LocalStore(tmp_path / "root")  # no catalog: what a store of an earlier version holds
    _save(older, "rec-1")
    _save(older, "rec-2")
    older.modify_metadata("rec-2", lambda m: setattr(m, "processed", True))
    store = build_store(StorageSettings(local_path=str(tmp_path / "root")))
    assert isinstance(store, CatalogStore) and store.catalog.filled
    assert [r.recording_id for r in store.list_recordings().items] == ["rec-1", "rec-2"]
    counts = store.get_storage_stats()
    assert (counts["recordings"], counts["processed"], counts["pending"]) == (2, 1, 1)
    _save(older, "rec-3")  # written behind the catalog's back: only a rebuild sees it
    again = build_store(StorageSettings(local_path=str(tmp_path / "root")))
    assert again.get_storage_stats()["recordings"] == 2  # filled once, not walked at every open
