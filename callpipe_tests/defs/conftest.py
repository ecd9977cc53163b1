"""A recording store plus the Dagster resource that points at the same place, locally or on S3."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dagster_aws.s3 import S3Resource

from callpipe.catalog import with_catalog
from callpipe.defs.resources import RecordingStoreResource
from callpipe.schema import ProcessingStatus, RecordingMetadata
from callpipe.storage import LocalStore, RecordingStore, S3Store, StorageSettings, make_s3_client
from callpipe_tests.storage.conftest import make_wav


@dataclass
class StoreSetup:
    """``store`` writes (as the online recorder would); ``resource`` is what sensors and schedules get."""

    store: RecordingStore
    resource: RecordingStoreResource
    seed: int = 0

    @property
    def raw(self) -> RecordingStore:
        """The store behind the catalog (the store itself when the catalog is off)."""
        return getattr(self.store, "wrapped", self.store)

    @property
    def on_s3(self) -> bool:
        return isinstance(self.raw, S3Store)

    def save(self, recording_id: str, timestamp: datetime, conversation_id: str = "conv-1") -> None:
        """Save a short WAV with a chosen call timestamp (aware datetime)."""
        self.seed += 1
        meta = {"recording_id": recording_id, "conversation_id": conversation_id, "timestamp": timestamp}
        self.store.save_recording(
            make_wav(seconds=0.1, seed=self.seed), conversation_id, metadata=meta, recording_id=recording_id
        )

    def mark_processed(self, *recording_ids: str) -> None:
        """What a finished run leaves behind: processed with the status set."""

        def done(meta: RecordingMetadata) -> None:
            meta.processed = True
            meta.status.status = ProcessingStatus.PROCESSED

        for recording_id in recording_ids:
            self.store.modify_metadata(recording_id, done)


def local_setup(root: Path) -> StoreSetup:
    resource = RecordingStoreResource(
        backend="local", local_path=str(root), s3=S3Resource(region_name="us-east-1")
    )
    return StoreSetup(catalogued(LocalStore(root), backend="local", local_path=str(root)), resource)


def catalogued(store: RecordingStore, **where: str) -> RecordingStore:
    """``store`` behind the catalog the resource opens for the same place (the environment's
    ``CALLPIPE_CATALOG``: on by default), so that writes here are what a sensor reads."""
    return with_catalog(store, StorageSettings.from_env().model_copy(update=where))


@pytest.fixture
def catalog_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CALLPIPE_CATALOG=off``: the marker-file index answers (stores of that setting)."""
    monkeypatch.setenv("CALLPIPE_CATALOG", "off")


@pytest.fixture(params=["local", "s3"])
def store_setup(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSetup:
    """Each test using this runs on a temp directory and on a real S3 API (moto server, loopback)."""
    if request.param == "local":
        return local_setup(tmp_path / "recordings")
    endpoint: str = request.getfixturevalue("s3_server")
    client: Any = make_s3_client(region_name="us-east-1", endpoint_url=endpoint)
    bucket = f"defs-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    resource = RecordingStoreResource(
        backend="s3",
        s3_bucket=bucket,
        s3_prefix="callpipe/test",
        s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1"),
    )
    raw = S3Store(bucket, "callpipe/test", client, cache_dir=tmp_path / "cache")
    return StoreSetup(catalogued(raw, backend="s3", s3_bucket=bucket, s3_prefix="callpipe/test"), resource)
