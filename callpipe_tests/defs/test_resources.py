"""The store resource builds its S3 client from ``S3Resource`` with bounded timeouts."""

import socket
import uuid

import pytest
from dagster_aws.s3 import S3Resource

from callpipe.defs.resources import RecordingStoreResource
from callpipe.storage import S3Store
from callpipe.storage.s3 import make_s3_client


def test_resource_client_reaches_the_server_with_bounded_timeouts(s3_server: str) -> None:
    bucket = f"res-{uuid.uuid4().hex[:12]}"
    make_s3_client("us-east-1", s3_server).create_bucket(Bucket=bucket)
    resource = RecordingStoreResource(
        backend="s3",
        s3_bucket=bucket,
        s3_prefix="p",
        s3=S3Resource(endpoint_url=s3_server, region_name="us-east-1"),
    )
    store = resource.get_store().wrapped  # type: ignore[attr-defined]  # the S3 store behind the catalog
    assert isinstance(store, S3Store)
    config = store.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.0, 5.0)
    assert store.list_dates() == []  # a real round trip to the server


def test_silent_endpoint_fails_within_seconds_not_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts connections and never answers: botocore's default would wait 60 s
    per try; the resource's client gives up after its read timeout and attempts."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
    monkeypatch.setenv("S3_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "2")
    resource = RecordingStoreResource(
        backend="s3",
        s3_bucket="b",
        s3_prefix="p",
        s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1"),
    )
    store = resource.get_store().wrapped  # type: ignore[attr-defined]  # opens even with S3 silent
    # The wait is bounded by these limits (benchmarks/timing_bounds.py prints how long it takes).
    config = store.client.meta.config
    assert config.read_timeout == 0.5 and config.retries["total_max_attempts"] == 2
    with pytest.raises(Exception, match=r"(?i)timeout|timed out"):
        store.list_dates()
    silent.close()
