"""The unprocessed sensor, the nightly schedule and a manual run on the same day at the same time."""

from __future__ import annotations

import json
import logging
import multiprocessing
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from callpipe.batch import ensure_dagster_home, quiet_run_config
from callpipe.defs.launch import execute_partition
from callpipe.defs.partitions import call_timezone
from callpipe.defs.resources import RecordingStoreResource
from callpipe.defs.schedules import nightly_requests
from callpipe.defs.sensors import unprocessed_recordings_sensor
from callpipe.stage_runner import STAGE_ORDER
from callpipe.storage import LocalStore
from callpipe_tests.faults.calls import seed_day
from callpipe_tests.faults.conftest import parse_all, stage_runs

pytestmark = pytest.mark.slow

DAY = "2026-03-13"
COUNT = 12


def _requests(store: LocalStore) -> dict[str, dg.RunRequest]:
    """What each trigger asks for: the real sensor and schedule evaluated, and a manual run."""
    resource = RecordingStoreResource(
        backend="local", local_path=str(store.root), s3=S3Resource(region_name="us-east-1")
    )
    with dg.build_sensor_context(resources={"store": resource}) as context:
        [sensor] = [r for r in unprocessed_recordings_sensor(context).run_requests if r.partition_key == DAY]
    night = datetime.combine(date.fromisoformat(DAY) + timedelta(days=1), time(2), ZoneInfo(call_timezone()))
    [nightly] = [r for r in nightly_requests(night, call_timezone(), set()) if r.partition_key == DAY]
    manual = dg.RunRequest(partition_key=DAY, tags={"callpipe/trigger": "cli"})
    return {"sensor": sensor, "schedule": nightly, "manual": manual}


def _launch(name: str, tags: dict[str, str], start: Any, out: Path) -> None:
    """In a child process: one run of the day with ``tags``; its result and the pipeline's
    per-stage lines go to ``out/{name}.json`` and ``out/{name}.log``."""
    handler = logging.FileHandler(out / f"{name}.log")
    pipeline_log = logging.getLogger("callpipe.stage_runner")
    pipeline_log.setLevel(logging.DEBUG)
    pipeline_log.addHandler(handler)
    with dg.DagsterInstance.get() as instance:
        start.wait(timeout=120)
        run = execute_partition(
            DAY,
            instance=instance,
            tags=tags,
            run_config=quiet_run_config(),
            outputs=("recordings", "transcripts", "call_analytics"),
        )
    handler.flush()
    result = {"run_id": run.run_id, "success": run.success, "values": run.values}
    (out / f"{name}.json").write_text(json.dumps(result, default=str))


def test_three_triggers_on_one_day_process_each_recording_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "recordings")
    ids = seed_day(store, DAY, COUNT)
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(store.root))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("CALLPIPE_STT_CHUNK_SIZE", "4")  # claims interleave chunk by chunk
    ensure_dagster_home()
    dg.DagsterInstance.get().dispose()  # create the instance's SQLite storage once, before the runs
    requests = _requests(store)
    assert {r.tags["callpipe/trigger"] for r in requests.values()} == {"unprocessed-sensor", "nightly", "cli"}

    # Three processes, as the daemon's run workers and a terminal would be (forked: no re-import).
    fork = multiprocessing.get_context("fork")
    start = fork.Barrier(len(requests))
    children = [
        fork.Process(target=_launch, args=(name, dict(request.tags), start, tmp_path))
        for name, request in requests.items()
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=300)
    assert [c.exitcode for c in children] == [0] * len(children)
    runs = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in requests}
    assert all(r["success"] for r in runs.values()), {n: r["success"] for n, r in runs.items()}

    # Who wrote what: every stage of every recording exactly once, all by one run per recording.
    ran = stage_runs(
        line for name in requests for line in (tmp_path / f"{name}.log").read_text().splitlines()
    )
    assert all(n == 1 for n in ran.values()), ran
    assert {(rid, stage) for _, rid, stage in ran} == {(rid, s) for rid in ids for s in STAGE_ORDER}
    worker = {}
    for run_id, rid, _ in ran:
        assert worker.setdefault(rid, run_id) == run_id, f"{rid} worked on by two runs"
    processed = {n: r["values"]["call_analytics"]["processed"] for n, r in runs.items()}
    assert sorted(rid for done in processed.values() for rid in done) == ids
    for name, run in runs.items():
        assert all(worker[rid] == run["run_id"] for rid in processed[name])
        manifest, refused = run["values"]["recordings"], run["values"]["transcripts"]["busy"]
        # What a run left alone was busy or done when it looked (manifest) or when it claimed.
        assert set(ids) - set(manifest["work"]) == set(manifest["skipped"])
        assert set(manifest["work"]) - set(processed[name]) == set(refused)

    # No lost update: one claim, one write per stage, one finalize; nothing else touched a document.
    assert sorted(parse_all(store)) == ids
    for rid in ids:
        meta = store.get_metadata(rid)
        assert meta.processed and meta.status.status == "processed" and meta.status.attempts == 1
        assert meta.provenance.run_id == worker[rid]
        assert set(meta.provenance.stage_inputs) == set(STAGE_ORDER)
        assert meta.revision == 2 + len(STAGE_ORDER)
        assert meta.sentiment and meta.intent and meta.entities is not None and meta.topics
    busy = sum(len(r["values"]["transcripts"]["busy"]) for r in runs.values())
    assert busy > 0, "the runs did not overlap: no claim was refused"
