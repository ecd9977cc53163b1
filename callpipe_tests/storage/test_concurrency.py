"""Optimistic concurrency: two writers of one revision, one wins, the other gets ConflictError."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from callpipe.schema import RecordingMetadata
from callpipe.storage import ConflictError, LocalStore, RecordingStore, S3Store
from callpipe_tests.storage.conftest import make_wav


def _race(store: RecordingStore, rid: str) -> dict[str, str]:
    """Two threads read revision 0, meet at a barrier, then update at once."""
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def writer(name: str) -> None:
        doc = store.get_metadata(rid)
        doc.transcription.text = f"written by {name}"
        doc.extra["writer"] = name
        barrier.wait()
        try:
            store.update_metadata(rid, doc)
            outcome[name] = "ok"
        except ConflictError:
            outcome[name] = "conflict"

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcome


def _check_one_winner(store: RecordingStore, rid: str, outcome: dict[str, str]) -> None:
    assert sorted(outcome.values()) == ["conflict", "ok"], outcome
    winner = next(name for name, result in outcome.items() if result == "ok")
    doc = store.get_metadata(rid)
    assert doc.revision == 1
    assert doc.extra == {"writer": winner} and doc.transcription.text == f"written by {winner}"


def test_two_threads_local(local_store: LocalStore) -> None:
    for round_ in range(10):
        rid = local_store.save_recording(make_wav(seed=round_), "conv").recording_id
        _check_one_winner(local_store, rid, _race(local_store, rid))


def test_two_threads_s3(s3_store: S3Store) -> None:
    for round_ in range(10):
        rid = s3_store.save_recording(make_wav(seed=round_), "conv").recording_id
        _check_one_winner(s3_store, rid, _race(s3_store, rid))


def test_stale_write_s3_is_refused_by_if_match(s3_store: S3Store) -> None:
    """The revision check passes but the object changed before the PUT: If-Match refuses it."""
    rid = s3_store.save_recording(make_wav(), "conv").recording_id
    key = s3_store.metadata_key(s3_store._entry(rid))
    raw, etag = s3_store._get_versioned(key)
    other = RecordingMetadata.model_validate_json(raw)
    other.extra["sneaky"] = True
    s3_store._put(key, other.model_dump_json().encode())  # someone else wrote after our read
    from callpipe.storage.blob_store import PreconditionFailed

    with pytest.raises(PreconditionFailed):
        s3_store._put_if(key, raw, etag)
    assert RecordingMetadata.model_validate_json(s3_store._get(key)).extra == {"sneaky": True}


def test_conditional_put_race_s3(s3_store: S3Store) -> None:
    """Four threads PUT with If-Match on the same ETag at once, 25 times: exactly one wins each time."""
    from callpipe.storage.blob_store import PreconditionFailed

    key = "index/race-probe"

    def writer(i: int, etag: str, barrier: threading.Barrier, winners: list[int]) -> None:
        barrier.wait()
        try:
            s3_store._put_if(key, f"{etag}-{i}".encode(), etag)
            winners.append(i)
        except PreconditionFailed:
            pass

    for round_ in range(25):
        etag = s3_store._put(key, f"base {round_}".encode())
        barrier = threading.Barrier(4)
        winners: list[int] = []
        threads = [threading.Thread(target=writer, args=(i, etag, barrier, winners)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(winners) == 1, winners
        assert s3_store._get(key) == f"{etag}-{winners[0]}".encode()


def _process_writer(root: str, rid: str, name: str, barrier: Any, results: Any) -> None:
    store = LocalStore(root)
    doc = store.get_metadata(rid)
    doc.extra["writer"] = name
    doc.transcription.text = f"written by {name}"
    barrier.wait()
    try:
        store.update_metadata(rid, doc)
        results.put((name, "ok"))
    except ConflictError:
        results.put((name, "conflict"))


@pytest.mark.slow
def test_two_processes_local(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "rec")
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(3):
        rid = store.save_recording(make_wav(seed=round_), "conv").recording_id
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_process_writer, args=(str(store.root), rid, n, barrier, results))
            for n in ("p1", "p2")
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
        outcome = dict(results.get(timeout=5) for _ in procs)
        _check_one_winner(store, rid, outcome)


@pytest.mark.parametrize("backend", ["local", "s3", "both"])
def test_modify_metadata_loses_no_update(backend: str, request: pytest.FixtureRequest) -> None:
    """Eight threads each add one item through read-modify-write; all eight land."""
    store: RecordingStore = request.getfixturevalue(
        {"local": "local_store", "s3": "s3_store", "both": "mirrored_store"}[backend]
    )
    rid = store.save_recording(make_wav(), "conv").recording_id
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            store.modify_metadata(rid, lambda d: d.extra.__setitem__(f"k{i}", i), retries=50)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    doc = store.get_metadata(rid)
    assert doc.extra == {f"k{i}": i for i in range(8)} and doc.revision == 8


def test_lost_if_match_race_leaves_no_stale_marker(s3_store: S3Store) -> None:
    """Writer B (processed=False) loses the If-Match race to writer A (processed=True) that slipped in
    between B's revision check and B's PUT: B gets ConflictError and A's state owns the index."""
    rid = s3_store.save_recording(make_wav(), "conv").recording_id
    rival = S3Store(s3_store.bucket, s3_store.prefix, s3_store.client)
    real_put = s3_store._put

    def interleaved(key: str, data: bytes, *, exclusive: bool = False) -> str:
        if key.startswith("index/pending/") and not rival.get_metadata(rid).processed:
            # A finishes completely (document written, marker removed) before B writes its marker.
            rival.modify_metadata(rid, lambda d: d.model_copy(update={"processed": True}))
        return real_put(key, data, exclusive=exclusive)

    doc = s3_store.get_metadata(rid)
    doc.transcription.text = "B"
    s3_store._put = interleaved  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="changed while updating"):
        s3_store.update_metadata(rid, doc)
    stored = rival.get_metadata(rid)
    assert stored.processed and stored.transcription.text == "" and stored.revision == 1
    assert rival.list_pending_dates() == [] and rival.list_recordings(processed=False).items == []
