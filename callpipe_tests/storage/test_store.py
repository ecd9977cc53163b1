"""Save / read / update / delete on every backend (local, real S3 API via moto, both)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callpipe.schema import RecordingMetadata
from callpipe.storage import (
    ChecksumMismatchError,
    ConflictError,
    InvalidAudioError,
    InvalidIdError,
    LocalStore,
    MirroredStore,
    RecordingExistsError,
    RecordingNotFoundError,
    RecordingStore,
    S3Store,
    StorageError,
)
from callpipe_tests.storage.conftest import make_wav

TS = datetime(2026, 11, 27, 6, 15, 0, 123456, tzinfo=UTC)


def _s3_side(store: RecordingStore) -> S3Store | None:
    if isinstance(store, S3Store):
        return store
    return store.s3 if isinstance(store, MirroredStore) else None


def _local_side(store: RecordingStore) -> LocalStore | None:
    if isinstance(store, LocalStore):
        return store
    return store.local if isinstance(store, MirroredStore) else None


def test_save_and_read_back(store: RecordingStore, speech_wav: bytes) -> None:
    result = store.save_recording(speech_wav, "conv-1", {"timestamp": TS, "direction": "outbound"})
    assert re.fullmatch(r"20261127T061500Z-[0-9a-f]{12}", result.recording_id)
    assert result.recording_id.split("-")[1].startswith(f"{TS.microsecond:05x}")
    assert result.checksum == hashlib.sha256(speech_wav).hexdigest()
    assert result.size_bytes == len(speech_wav) and result.pending_sync is False

    assert store.get_recording(result.recording_id) == speech_wav
    doc = store.get_metadata(result.recording_id)
    assert doc == result.metadata
    assert doc.revision == 0 and doc.processed is False and doc.direction == "outbound"
    assert doc.audio is not None
    assert (doc.audio.format, doc.audio.sample_rate, doc.audio.channels) == ("wav", 22050, 1)
    assert doc.audio.checksum_sha256 == result.checksum
    assert doc.storage.backend == store.backend

    s3 = _s3_side(store)
    if s3 is not None:
        key = f"callpipe/dev/recordings/conv-1/{result.recording_id}.wav"
        assert result.s3_path == f"s3://{s3.bucket}/{key}"
        assert doc.storage.s3_audio_key == key
        body = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == result.checksum
        meta = s3.client.get_object(Bucket=s3.bucket, Key=key.removesuffix(".wav") + ".json")["Body"].read()
        assert RecordingMetadata.model_validate_json(meta).recording_id == result.recording_id
    local = _local_side(store)
    if local is not None:
        assert result.local_path == local.root / "audio" / "conv-1" / f"{result.recording_id}.wav"
        assert result.local_path.read_bytes() == speech_wav
        assert doc.storage.audio_path == f"audio/conv-1/{result.recording_id}.wav"
        assert (
            Path(result.metadata_path) == local.root / "metadata" / "conv-1" / f"{result.recording_id}.json"
        )

    with store.audio_file(result.recording_id) as path:
        assert path.read_bytes() == speech_wav


def test_stored_format_comes_from_bytes(store: RecordingStore, speech_wav: bytes) -> None:
    import io

    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(speech_wav))
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="FLAC")
    result = store.save_recording(buffer.getvalue(), "conv-flac", format="wav")
    assert result.metadata.audio is not None and result.metadata.audio.format == "flac"
    with store.audio_file(result.recording_id) as path:
        assert path.suffix == ".flac"


def test_caller_ids_and_typed_metadata(store: RecordingStore) -> None:
    given = RecordingMetadata(recording_id="rec.001", conversation_id="c_9", timestamp=TS)
    result = store.save_recording(make_wav(), "c_9", given)
    assert result.recording_id == "rec.001"
    assert given.audio is None, "the caller's object is not modified"
    with pytest.raises(RecordingExistsError):
        store.save_recording(make_wav(seed=1), "c_9", recording_id="rec.001")
    with pytest.raises(ValueError, match="differs"):
        store.save_recording(make_wav(), "other", given)
    assert store.get_recording("rec.001") == make_wav()


def test_non_audio_is_rejected_and_nothing_written(store: RecordingStore) -> None:
    for data in (b"", b"not audio at all, just text", make_wav()[:100]):
        with pytest.raises(InvalidAudioError):
            store.save_recording(data, "conv-x", recording_id="r1")
    with pytest.raises(RecordingNotFoundError):
        store.get_metadata("r1")
    stats = store.get_storage_stats()
    assert stats["recordings"] == 0 and stats["total_bytes"] == 0
    s3 = _s3_side(store)
    if s3 is not None:
        assert "Contents" not in s3.client.list_objects_v2(Bucket=s3.bucket)
    local = _local_side(store)
    if local is not None:
        assert not [p for p in local.root.rglob("*") if p.is_file() and p.parent.name != ".locks"]


@pytest.mark.parametrize("bad", ["../x", "a/b", "a\\b", "x\x00y", "", "a" * 129, ".hidden", "a..b", "é"])
def test_unsafe_ids_rejected(store: RecordingStore, bad: str) -> None:
    with pytest.raises(InvalidIdError, match="invalid"):
        store.save_recording(make_wav(), bad)
    with pytest.raises(InvalidIdError):
        store.save_recording(make_wav(), "conv", recording_id=bad)
    for read in (store.get_metadata, store.get_recording, store.delete_recording):
        with pytest.raises(InvalidIdError):
            read(bad)
    with pytest.raises(InvalidIdError), store.audio_file(bad):
        pass
    assert issubclass(InvalidIdError, ValueError)


def test_update_metadata_revisions(store: RecordingStore) -> None:
    rid = store.save_recording(make_wav(), "conv-u", {"timestamp": TS}).recording_id
    doc = store.get_metadata(rid)
    doc.transcription.text = "hola"
    doc.audio = None  # store-owned: ignored
    updated = store.update_metadata(rid, doc)
    assert updated.revision == 1 and updated.audio is not None
    assert store.get_metadata(rid) == updated
    doc.transcription.text = "stale"
    with pytest.raises(ConflictError, match="stored revision is 1"):
        store.update_metadata(rid, doc)
    assert store.get_metadata(rid).transcription.text == "hola"
    moved = updated.model_copy(update={"conversation_id": "elsewhere"})
    with pytest.raises(ValueError, match="cannot be changed"):
        store.update_metadata(rid, moved)

    def bump(d: RecordingMetadata) -> None:
        d.extra["n"] = d.extra.get("n", 0) + 1

    assert store.modify_metadata(rid, bump).extra == {"n": 1}
    assert store.modify_metadata(rid, lambda d: d.model_copy(update={"processed": True})).revision == 3


def test_checksum_mismatch_detected(store: RecordingStore) -> None:
    rid = store.save_recording(make_wav(), "conv-c").recording_id
    tampered = make_wav(seed=5)
    local = _local_side(store)
    if local is not None:
        local.local_audio_path(rid).write_bytes(tampered)
    else:
        s3 = _s3_side(store)
        assert s3 is not None
        key = s3.full_key(s3.audio_key(s3._entry(rid)))
        s3.client.put_object(Bucket=s3.bucket, Key=key, Body=tampered)
    with pytest.raises(ChecksumMismatchError, match=rid):
        store.get_recording(rid)


def test_transcript_and_delete(store: RecordingStore) -> None:
    keep = store.save_recording(make_wav(seed=1), "conv-d").recording_id
    rid = store.save_recording(make_wav(seed=2), "conv-d").recording_id
    where = store.save_transcript(rid, "buenos días, ¿en qué puedo ayudarle?")
    assert where.endswith(f"transcripts/conv-d/{rid}.txt")
    assert store.get_transcript(rid) == "buenos días, ¿en qué puedo ayudarle?"
    with store.audio_file(rid) as path:
        assert path.is_file()
    store.delete_recording(rid)
    for read in (store.get_metadata, store.get_recording, store.get_transcript):
        with pytest.raises(RecordingNotFoundError):
            read(rid)
    with pytest.raises(RecordingNotFoundError):
        store.delete_recording(rid)
    assert not path.exists()
    assert [r.recording_id for r in store.list_recordings().items] == [keep]
    assert store.get_storage_stats()["recordings"] == 1
    s3 = _s3_side(store)
    if s3 is not None:
        keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]
        assert keys and not [k for k in keys if rid in k]
    local = _local_side(store)
    if local is not None:
        assert not [p for p in local.root.rglob(f"*{rid}*") if p.parent.name != ".locks"]


def test_stats(store: RecordingStore) -> None:
    sizes = 0
    for seed in range(3):
        data = make_wav(seed=seed)
        sizes += len(data)
        rid = store.save_recording(data, f"conv-{seed}").recording_id
    store.modify_metadata(rid, lambda d: d.model_copy(update={"processed": True}))
    stats = store.get_storage_stats()
    assert stats["backend"] == store.backend
    assert (stats["recordings"], stats["processed"], stats["pending"]) == (3, 1, 2)
    assert stats["total_bytes"] == sizes and stats["formats"] == {"wav": 3}
    assert stats["pending_sync"] == 0
    if _s3_side(store) is not None:
        assert stats["prefix"] == "callpipe/dev" and stats["bucket"].startswith("test-")
    else:
        assert stats["root"].endswith("recordings")


def test_s3_audio_is_staged_for_the_block_only(s3_store: S3Store, speech_wav: bytes) -> None:
    rid = s3_store.save_recording(speech_wav, "conv").recording_id
    with s3_store.audio_file(rid) as first, s3_store.audio_file(rid) as second:
        assert first != second and first.read_bytes() == second.read_bytes() == speech_wav
        assert first.parent == s3_store.cache_dir and rid not in first.name
        assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert not first.exists() and not second.exists()
    with pytest.raises(RuntimeError), s3_store.audio_file(rid) as path:
        raise RuntimeError("the stage failed")
    assert not path.exists() and list(s3_store.cache_dir.iterdir()) == []
    with pytest.raises(StorageError, match="audio_file"):
        s3_store.local_audio_path(rid)


def test_s3_staging_sweeps_dead_processes_and_old_downloads(s3_store: S3Store, speech_wav: bytes) -> None:
    rid = s3_store.save_recording(speech_wav, "conv").recording_id
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    s3_store.cache_dir.mkdir(parents=True, exist_ok=True)
    killed = s3_store.cache_dir / f"{int(dead.stdout)}-abc123.wav"  # a stage killed mid-way
    legacy = s3_store.cache_dir / f"{rid}.wav"  # kept for good by versions before staging
    half = s3_store.cache_dir / f".{rid}.wav.{'0' * 32}.tmp"  # their crash-left temp file
    alive = s3_store.cache_dir / f"{os.getpid()}-xyz789.wav"  # another stage of a live process
    for path in (killed, legacy, half, alive):
        path.write_bytes(speech_wav)
    with s3_store.audio_file(rid):
        pass
    assert not killed.exists() and not legacy.exists() and not half.exists() and alive.exists()
