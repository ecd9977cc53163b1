"""STORAGE_BACKEND=both: local first, S3 second, nothing lost while S3 is down."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from callpipe.storage import (
    LocalStore,
    MirroredStore,
    RecordingNotFoundError,
    S3Store,
    StorageUnavailableError,
    make_s3_client,
)
from callpipe.storage.s3 import FAST
from callpipe_tests.storage.conftest import RestartableS3, make_wav


def _drain(listener: Any) -> int:
    """Accept and close every connection waiting on a non-blocking listening socket; how many."""
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def _s3_sha(store: S3Store, key: str) -> str:
    return hashlib.sha256(store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read()).hexdigest()


@pytest.fixture
def outage(restartable_s3: RestartableS3, tmp_path: Path) -> tuple[MirroredStore, RestartableS3, Any]:
    # the client settings build_store uses for STORAGE_BACKEND=both
    client = make_s3_client(region_name="us-east-1", endpoint_url=restartable_s3.endpoint, limits=FAST)
    client.create_bucket(Bucket="mirror-outage")
    store = MirroredStore(
        LocalStore(tmp_path / "local"),
        S3Store("mirror-outage", "calls", client, cache_dir=tmp_path / "cache"),
        s3_retry_after=0.0,
    )
    return store, restartable_s3, client


@pytest.mark.slow
def test_s3_outage_then_sync(outage: tuple[MirroredStore, RestartableS3, Any], speech_wav: bytes) -> None:
    store, server, client = outage
    before = store.save_recording(make_wav(seed=1), "conv-1")
    assert not before.pending_sync

    server.stop()
    with pytest.raises(EndpointConnectionError):
        client.list_objects_v2(Bucket="mirror-outage")  # the outage is real
    result = store.save_recording(speech_wav, "conv-2")  # FAST limits: benchmarks/timing_bounds.py
    assert result.pending_sync is True
    doc = store.get_metadata(result.recording_id)
    assert doc.storage.pending_sync is True and "S3" in (doc.storage.sync_error or "")
    assert "testing" not in (doc.storage.sync_error or "")  # no credential in metadata
    assert store.get_recording(result.recording_id) == speech_wav
    assert store.get_storage_stats()["pending_sync"] == 1
    doc.transcription.text = "hola"
    store.update_metadata(result.recording_id, doc)  # updates still work locally
    store.save_transcript(result.recording_id, "hola, buenos días")
    report = store.sync_pending()
    assert report.uploaded == [] and result.recording_id in report.failed and report.remaining == 1

    server.start()
    report = store.sync_pending()
    assert report.uploaded == [result.recording_id] and report.failed == {} and report.remaining == 0
    synced = store.get_metadata(result.recording_id)
    assert synced.storage.pending_sync is False and synced.storage.sync_error is None
    assert synced.transcription.text == "hola" and synced.revision == 2
    key = f"calls/recordings/conv-2/{result.recording_id}.wav"
    assert _s3_sha(store.s3, key) == hashlib.sha256(speech_wav).hexdigest() == result.checksum
    assert store.s3.get_metadata(result.recording_id) == synced
    assert store.s3.get_recording(result.recording_id) == speech_wav
    assert store.s3.get_transcript(result.recording_id) == "hola, buenos días"
    assert [r.recording_id for r in store.s3.list_recordings().items] == sorted(
        [before.recording_id, result.recording_id]
    )
    assert store.get_storage_stats()["pending_sync"] == 0


@pytest.mark.slow
def test_later_save_syncs_pending(outage: tuple[MirroredStore, RestartableS3, Any]) -> None:
    store, server, _ = outage
    server.stop()
    pending = [store.save_recording(make_wav(seed=i), "conv").recording_id for i in range(3)]
    server.start()
    fresh = store.save_recording(make_wav(seed=9), "conv")
    assert not fresh.pending_sync
    assert store.get_storage_stats()["pending_sync"] == 1  # two synced opportunistically
    store.sync_pending()
    for rid in pending:
        assert store.s3.get_recording(rid) == store.local.get_recording(rid)
        assert store.s3.get_metadata(rid).storage.pending_sync is False


def test_update_reaches_s3_and_processed_marker_follows(mirrored_store: MirroredStore) -> None:
    rid = mirrored_store.save_recording(make_wav(), "conv").recording_id
    assert mirrored_store.s3.list_pending_dates() == mirrored_store.list_pending_dates()
    updated = mirrored_store.modify_metadata(rid, lambda d: d.model_copy(update={"processed": True}))
    assert mirrored_store.s3.get_metadata(rid) == updated
    assert mirrored_store.s3.list_pending_dates() == [] == mirrored_store.list_pending_dates()
    assert mirrored_store.get_storage_stats()["pending_sync"] == 0


def test_reads_fall_back_to_s3(mirrored_store: MirroredStore) -> None:
    data = make_wav(seed=4)
    rid = mirrored_store.save_recording(data, "conv").recording_id
    mirrored_store.local.delete_recording(rid)  # local disk lost
    assert mirrored_store.get_recording(rid) == data
    with mirrored_store.audio_file(rid) as staged:  # a temporary download, gone after the block
        assert staged.read_bytes() == data
    assert not staged.exists()
    mirrored_store.delete_recording(rid)
    with pytest.raises(RecordingNotFoundError):
        mirrored_store.get_metadata(rid)


@pytest.mark.slow
def test_delete_during_outage_is_retryable(outage: tuple[MirroredStore, RestartableS3, Any]) -> None:
    store, server, _ = outage
    rid = store.save_recording(make_wav(), "conv").recording_id
    server.stop()
    with pytest.raises(StorageUnavailableError):
        store.delete_recording(rid)
    with pytest.raises(RecordingNotFoundError):
        store.local.get_metadata(rid)
    server.start()
    store.delete_recording(rid)
    with pytest.raises(RecordingNotFoundError):
        store.s3.get_metadata(rid)


@pytest.mark.slow
def test_hung_endpoint_costs_a_save_under_3s(tmp_path: Path, s3_server: str) -> None:
    """An endpoint that accepts connections and never answers, with the settings' defaults for
    ``both``: the first save gives up within ~2 s, the next ones skip S3 while it is down."""
    import socket

    from callpipe.storage import StorageSettings, build_store

    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        endpoint = f"http://127.0.0.1:{hung.getsockname()[1]}"
        store = build_store(
            StorageSettings(
                backend="both", local_path=str(tmp_path), s3_bucket="any", s3_endpoint_url=endpoint
            )
        )
        assert isinstance(store.wrapped, MirroredStore)  # type: ignore[attr-defined]  # catalog on
        hung.setblocking(False)
        connections = []
        for seed in range(2):
            _drain(hung)
            result = store.save_recording(make_wav(seed=seed), "conv")
            connections.append(_drain(hung))
            assert result.pending_sync and store.get_recording(result.recording_id) == make_wav(seed=seed)
        # The first save tried S3 (FAST limits bound how long); the second did not connect at all.
        # benchmarks/timing_bounds.py prints both durations.
        assert connections[0] >= 1 and connections[1] == 0, connections
        assert store.get_storage_stats()["pending_sync"] == 2
