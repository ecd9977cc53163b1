"""Step outputs on S3 (moto server on loopback) when steps run apart and the store is on S3."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_aws.s3 import S3PickleIOManager

from callpipe.defs.executors import scale_resources
from callpipe.defs.launch import process_call_date_job
from callpipe.storage import make_s3_client

DAY = "2025-02-04"


def test_io_manager_follows_the_executor_and_the_store() -> None:
    s3 = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "calls", "S3_PREFIX": "/prod/"}
    assert scale_resources({**s3}) == {}  # default executor: outputs stay with the run
    assert scale_resources({"CALLPIPE_EXECUTOR": "celery"}) == {}  # local store: shared DAGSTER_HOME
    manager = scale_resources({**s3, "CALLPIPE_EXECUTOR": "k8s"})["io_manager"]
    assert isinstance(manager, S3PickleIOManager)
    assert (manager.s3_bucket, manager.s3_prefix) == ("calls", "prod/dagster-io")


def test_step_outputs_round_trip_through_s3(
    s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client: Any = make_s3_client(region_name="us-east-1", endpoint_url=s3_server)
    bucket = f"scale-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    env = {
        "CALLPIPE_EXECUTOR": "celery",
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": bucket,
        "S3_PREFIX": "callpipe",
        "S3_ENDPOINT_URL": s3_server,
        "S3_REGION": "us-east-1",
        "STORAGE_CACHE_DIR": str(tmp_path / "cache"),  # staging, and the tables beside it
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CALLPIPE_ANALYTICS_DB", raising=False)
    job = process_call_date_job()
    assert job.executor_def.name == "celery"
    with dg.instance_for_test() as instance:
        # In process here (no workers needed): the job's own resources, S3 IO manager included.
        result = job.execute_in_process(partition_key=DAY, instance=instance, raise_on_error=False)
        assert result.success
        listing = client.list_objects_v2(Bucket=bucket, Prefix="callpipe/dagster-io/")
        keys = {item["Key"] for item in listing["Contents"]}
        assert f"callpipe/dagster-io/recordings/{DAY}" in keys
        assert f"callpipe/dagster-io/call_analytics/{DAY}" in keys
        from callpipe.defs.definitions import build_defs

        manifest = build_defs().load_asset_value("recordings", instance=instance, partition_key=DAY)
    assert manifest["work"] == [] and manifest == result.asset_value("recordings")
    # the day's (empty) tables: in the bucket and beside the staging cache, inside tmp_path only
    tables = client.list_objects_v2(Bucket=bucket, Prefix="callpipe/analytics/")["Contents"]
    assert f"callpipe/analytics/calls/call_date={DAY}/part.parquet" in {item["Key"] for item in tables}
    assert len(list(tmp_path.glob(f"analytics/{bucket}/**/calls/call_date={DAY}/part.parquet"))) == 1
