"""StorageSettings from the environment and get_audio_storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from callpipe.settings import SettingsError
from callpipe.storage import (
    LocalStore,
    MirroredStore,
    S3Store,
    StorageSettings,
    build_store,
    get_audio_storage,
    new_recording_id,
    validate_id,
)
from callpipe.storage.ids import decode_cursor, encode_cursor
from callpipe_tests.storage.conftest import make_wav


def test_defaults_and_env() -> None:
    assert StorageSettings.from_env({}) == StorageSettings(backend="local", local_path="./data/recordings")
    settings = StorageSettings.from_env(
        {
            "STORAGE_BACKEND": " Both ",
            "STORAGE_LOCAL_PATH": "/srv/rec",
            "S3_BUCKET": "calls",
            "S3_REGION": "eu-west-1",
            "S3_ENDPOINT_URL": "http://minio:9000",
            "S3_PREFIX": "prod/",
            "S3_READ_TIMEOUT": "2.5",
            "S3_ENDPOINT": "ignored",
        }
    )
    assert settings.backend == "both" and settings.s3_bucket == "calls" and settings.s3_read_timeout == 2.5
    assert settings.s3_endpoint_url == "http://minio:9000" and settings.s3_prefix == "prod/"
    with pytest.raises(ValidationError, match="S3_BUCKET"):
        StorageSettings.from_env({"STORAGE_BACKEND": "s3"})
    with pytest.raises(SettingsError, match="STORAGE_BACKEND='ftp'"):
        StorageSettings.from_env({"STORAGE_BACKEND": "ftp"})


def test_get_audio_storage_from_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_server: str, s3_client: Any, bucket: str
) -> None:
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "rec"))
    monkeypatch.setenv("STORAGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("STORAGE_BACKEND", raising=False)
    local = get_audio_storage().wrapped  # type: ignore[attr-defined]  # the catalog's wrapped store
    assert isinstance(local, LocalStore) and local.root == tmp_path / "rec"

    monkeypatch.setenv("STORAGE_BACKEND", "s3")
    monkeypatch.setenv("S3_BUCKET", bucket)
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("S3_REGION", "us-east-1")
    monkeypatch.setenv("S3_PREFIX", "/env-prefix/")
    s3 = get_audio_storage().wrapped  # type: ignore[attr-defined]
    assert isinstance(s3, S3Store) and s3.prefix == "env-prefix"
    rid = s3.save_recording(make_wav(), "conv").recording_id
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"env-prefix/recordings/conv/{rid}.wav" in keys

    monkeypatch.setenv("STORAGE_BACKEND", "both")
    both = get_audio_storage()
    assert isinstance(both.wrapped, MirroredStore)  # type: ignore[attr-defined]
    assert both.get_metadata(rid).recording_id == rid  # local misses it, S3 answers
    off = StorageSettings(local_path=str(tmp_path / "x"), catalog="off")
    assert isinstance(build_store(off), LocalStore)


def test_recording_ids_sort_by_time() -> None:
    start = datetime(2026, 11, 27, 23, 59, 59, 999000, tzinfo=UTC)
    stamps = [start + timedelta(microseconds=250 * i) for i in range(8)]
    ids = [new_recording_id(ts) for ts in stamps]
    assert ids == sorted(ids) and len(set(ids)) == 8
    assert all(validate_id(i) == i for i in ids)
    assert decode_cursor(encode_cursor("2026-11-27", ids[0])) == ("2026-11-27", ids[0])
