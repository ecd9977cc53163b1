"""A day partition through dagster-celery on a real Redis, with workers started by
``dagster-celery worker start`` as the README says: the day's STT is fanned out in chunks over two
``gpu`` workers at once, the other steps run on the ``dagster`` worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from callpipe.batch import ensure_dagster_home, run_partitions
from callpipe.defs.assets import STT_CHUNK_ENV
from callpipe.defs.executors import set_gpu_slots
from callpipe.defs.launch import step_report
from callpipe.storage import LocalStore
from callpipe_tests.demo_recordings import record_demo_calls
from callpipe_tests.scale.workers import celery_workers

pytestmark = pytest.mark.slow

DAY = "2026-10-14"
CHUNK = 2
WORKERS = (("gpu", "gpuw1"), ("gpu", "gpuw2"), ("dagster", "cpuw"))
CHUNK_STEP = "transcripts.transcribe_chunk["


@pytest.fixture
def celery_env(
    redis_url: str, dagster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The launcher's environment in celery mode (chunks of 2 recordings, a `gpu` pool of 2 slots),
    and two gpu workers and a cpu worker sharing it."""
    env = {
        **dagster_env,
        "CALLPIPE_EXECUTOR": "celery",
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        STT_CHUNK_ENV: str(CHUNK),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ensure_dagster_home()
    # Create the SQLite databases once (workers starting together on an empty DAGSTER_HOME would
    # race to create the schema) and give the gpu pool one slot per gpu worker.
    with dg.DagsterInstance.get() as instance:
        set_gpu_slots(instance, 2)
    with celery_workers(redis_url, tmp_path, workers=WORKERS):
        yield env


def chunk_outputs(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    """The output metadata of each ``transcribe_chunk`` step of the run, by step key."""
    outputs = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT):
        event = record.dagster_event
        if event is not None and event.step_key and event.step_key.startswith(CHUNK_STEP):
            outputs[event.step_key] = {k: v.value for k, v in event.step_output_data.metadata.items()}
    return outputs


def test_day_stt_fans_out_over_two_gpu_workers_each_recording_once(celery_env: dict[str, str]) -> None:
    store = LocalStore(celery_env["STORAGE_LOCAL_PATH"])
    # Two calls whose live transcript Whisper must redo, six it keeps (cheap): 8 recordings, 4 chunks.
    whisper = record_demo_calls(store, DAY, ["saldo", "tarjeta"])
    kept = record_demo_calls(
        store, DAY, ["baja", "correo", "factura", "transferencia", "saldo", "tarjeta"],
        confident=True, suffix="-kept", first_minute=2,
    )  # fmt: skip
    ids = whisper + kept

    summary = run_partitions({DAY: None}, trigger="celery-test")
    (run,) = summary["runs"]
    assert run["success"], run
    assert run["processed"] == len(ids) and run["failed"] == 0, run

    for recording_id in ids:
        meta = store.get_metadata(recording_id)
        assert meta.processed and meta.status.status == "processed"
        assert meta.provenance.run_id == run["run_id"]
        assert meta.status.attempts == 1  # one lease taken, by one chunk of this run
        assert meta.transcription.retranscribed == (recording_id in whisper)  # Whisper on a gpu worker
        assert meta.transcription.corrected_text and meta.sentiment is not None and meta.intent is not None

    with dg.DagsterInstance.get() as instance:
        steps = step_report(instance, run["run_id"])
        chunks = chunk_outputs(instance, run["run_id"])
        materialization = instance.get_latest_materialization_event(dg.AssetKey("transcripts"))
    assert materialization is not None and materialization.asset_materialization is not None
    assert materialization.asset_materialization.partition == DAY
    asset_meta = {k: v.value for k, v in materialization.asset_materialization.metadata.items()}
    counts = {k: asset_meta[k] for k in ("chunks", "ran", "cached", "failed", "busy")}
    assert counts == {"chunks": 4, "ran": 8, "cached": 0, "failed": 0, "busy": 0}, asset_meta

    # Every recording in exactly one chunk of at most CHUNK, and transcribed there (not cached).
    assert len(chunks) == 4, sorted(chunks)
    planned = [rid for out in chunks.values() for rid in out["recordings"]]
    assert sorted(planned) == sorted(ids)
    for key, out in chunks.items():
        assert 1 <= len(out["recordings"]) <= CHUNK, (key, out)
        assert out["ran"] == sorted(out["recordings"]), (key, out)
        assert (out["cached"], out["failed"], out["busy"]) == (0, 0, 0), (key, out)

    # Both gpu workers took chunks, at overlapping times; the other steps ran on the cpu worker.
    stt = {key: s for key, s in steps.items() if key.startswith(CHUNK_STEP)}
    assert set(stt) == set(chunks)
    assert all(s["queue"] == "gpu" and s["seconds"] is not None for s in stt.values()), stt
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for s in stt.values():
        by_worker.setdefault(s["worker"].split("@")[0], []).append(s)
    assert set(by_worker) == {"gpuw1", "gpuw2"}, stt
    one, two = by_worker.values()
    assert any(a["started"] < b["finished"] and b["started"] < a["finished"] for a in one for b in two), stt
    rest = {key: s for key, s in steps.items() if key not in stt and s["seconds"] is not None}
    wanted = {"recordings", "transcripts.plan_stt_chunks", "transcripts.merge_stt_chunks", "call_analytics"}
    assert wanted <= set(rest), sorted(rest)
    assert all(s["queue"] == "dagster" and s["worker"].startswith("cpuw@") for s in rest.values()), rest
