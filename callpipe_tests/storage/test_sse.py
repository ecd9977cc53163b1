"""S3 server-side encryption (SSE-S3 / SSE-KMS) on every object the S3 store writes (moto server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from callpipe.schema import RecordingMetadata
from callpipe.storage import S3Store, StorageSettings, build_store
from callpipe_tests.storage.conftest import make_wav


def _objects(client: Any, bucket: str) -> dict[str, dict[str, Any]]:
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: client.head_object(Bucket=bucket, Key=key) for key in keys}


def _exercise(store: S3Store) -> None:
    """Every kind of write: exclusive id claim, plain PUTs, conditional metadata updates."""
    store.save_recording(make_wav(seed=1), "conv-1", recording_id="rec-1")

    def edit(meta: RecordingMetadata) -> None:
        meta.extra["note"] = "updated"

    store.modify_metadata("rec-1", edit)  # If-Match PUT
    store.save_transcript("rec-1", "hola")
    store.request_reprocess("rec-1")


def _store(s3_server: str, bucket: str, tmp_path: Path, **env: str) -> S3Store:
    base = {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": s3_server,
        "S3_REGION": "us-east-1",
    }
    base["CALLPIPE_STATE_DIR"] = str(tmp_path / "state")  # the S3-only store's catalog
    settings = StorageSettings.from_env({**base, "STORAGE_CACHE_DIR": str(tmp_path / "cache"), **env})
    store = build_store(settings)
    assert isinstance(store.wrapped, S3Store)  # type: ignore[attr-defined]  # behind the catalog
    assert next((tmp_path / "state").glob("catalog-*.sqlite"), None) is not None
    return store  # type: ignore[return-value]


def test_sse_s3_on_every_object(s3_server: str, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    _exercise(_store(s3_server, bucket, tmp_path, S3_SSE="aes256"))
    heads = _objects(s3_client, bucket)
    assert len(heads) >= 5  # audio, metadata, transcript, index entries
    assert {key: h.get("ServerSideEncryption") for key, h in heads.items()} == dict.fromkeys(heads, "AES256")


def test_sse_kms_with_key_id_on_every_object(
    s3_server: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    kms = boto3.client("kms", endpoint_url=s3_server, region_name="us-east-1")
    key_id = kms.create_key(Description="callpipe test")["KeyMetadata"]["KeyId"]
    _exercise(_store(s3_server, bucket, tmp_path, S3_SSE_KMS_KEY_ID=key_id))  # implies aws:kms
    heads = _objects(s3_client, bucket)
    assert heads and all(h.get("ServerSideEncryption") == "aws:kms" for h in heads.values())
    assert all(h.get("SSEKMSKeyId", "").endswith(key_id) for h in heads.values())


def test_without_sse_objects_carry_none(s3_server: str, s3_client: Any, bucket: str, tmp_path: Path) -> None:
    _exercise(_store(s3_server, bucket, tmp_path))
    assert all(h.get("ServerSideEncryption") is None for h in _objects(s3_client, bucket).values())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"S3_SSE": "rot13"}, "s3_sse"),
        ({"S3_SSE": "AES256", "S3_SSE_KMS_KEY_ID": "k-1"}, "needs server-side encryption aws:kms"),
    ],
)
def test_bad_sse_settings_are_rejected(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StorageSettings.from_env({"STORAGE_BACKEND": "s3", "S3_BUCKET": "calls", **env})
    with pytest.raises(ValueError, match="server-side encryption"):
        S3Store("calls", client=object(), sse="aws:kms:dsse")
