"""Retention: audio of processed calls older than N days goes (locally, on S3 and on both sides of
the mirror) while de-identified analytics stay; the Dagster job, its schedule and the CLI."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from callpipe import cli
from callpipe.defs.definitions import defs
from callpipe.defs.retention_job import apply_retention_job, build_retention_schedule
from callpipe.pii import caller_info
from callpipe.retention import apply_retention, retention_days
from callpipe.schema import CallerInfo
from callpipe.stage_runner import PipelineSettings, work_reason
from callpipe.storage import MirroredStore, RecordingNotFoundError, RecordingStore
from callpipe.storage import index as store_index
from callpipe.storage.mirrored import store_sides
from callpipe_tests.defs.conftest import StoreSetup, local_setup
from callpipe_tests.storage import conftest as storage_fixtures
from callpipe_tests.storage.conftest import make_wav

bucket = storage_fixtures.bucket
s3_client = storage_fixtures.s3_client
local_store = storage_fixtures.local_store
s3_store = storage_fixtures.s3_store
mirrored_store = storage_fixtures.mirrored_store

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PHONE = "+34612345678"
SAID = "Hola, soy Ana García, mi teléfono es 612 345 678 y llamo por la factura"


@pytest.fixture(autouse=True)
def pii_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPIPE_PII_KEY", "retention-test-key-0123456789")
    monkeypatch.setenv("PII_REDACTION", "mask")
    monkeypatch.delenv("RETENTION_DAYS", raising=False)


def save_call(
    store: RecordingStore, rid: str, when: datetime, processed: bool = True, seed: int = 0
) -> bytes:
    """A processed (or not) call with a transcript, entities, caller and analytics."""
    audio = make_wav(seconds=0.2, seed=seed)
    spoken = {"text": SAID, "word_confidences": [{"word": "Ana", "confidence": 0.9}]}
    meta: dict[str, Any] = {
        "recording_id": rid,
        "conversation_id": f"conv-{rid}",
        "timestamp": when,
        "caller": caller_info(PHONE).model_dump(),
        "transcription": {**spoken, "corrected_text": SAID, "estimated_wer": 0.1},
        "online_transcription": spoken,
        "entities": {
            "persons": [{"kind": "person", "text": "Ana García", "value": "Ana García"}],
            "phone_numbers": [{"kind": "phone", "text": "612 345 678", "value": PHONE}],
        },
        "sentiment": {"label": "negative", "score": -0.4, "confidence": 0.8},
        "intent": {"primary_intent": "billing", "confidence": 0.7},
        "topics": {"topics": ["factura"], "keywords": ["factura"]},
        "turns": [{"speaker": "customer", "start": 0.0, "end": 2.0, "text": SAID}],
        "conversation_metrics": {"talk_time_seconds": 2.0, "turn_count": 1},
        "extra": {"agent_id": "agent-7", "reference_text": SAID},
        "processed": processed,
        "status": {"status": "processed" if processed else "pending"},
    }
    store.save_recording(audio, f"conv-{rid}", metadata=meta, recording_id=rid)
    store.save_transcript(rid, SAID)
    return audio


def assert_retained(store: RecordingStore, rid: str, now: datetime) -> None:
    with pytest.raises(RecordingNotFoundError):
        store.get_recording(rid)
    with pytest.raises(RecordingNotFoundError):
        store.get_transcript(rid)
    key = caller_info(PHONE).phone_key
    assert key
    for side in store_sides(store)[1]:
        entry = side._entry(rid)
        assert not side._exists(side.audio_key(entry)) and not side._exists(side.transcript_key(entry))
        assert rid not in side._list_names(f"{store_index.BY_CALLER}/{key}")
        meta = side.get_metadata(rid)
        assert meta.retention is not None and meta.retention.audio_deleted_at == now
        assert meta.retention.entity_counts == {"persons": 1, "phone_numbers": 1}
        raw = meta.model_dump_json()
        for personal in ("612", "Ana", "García", key, "+34 6**"):
            assert personal not in raw, personal
        assert "[PHONE]" in meta.transcription.text and "[PERSON]" in meta.transcription.text
        assert meta.transcription.word_confidences == [] and meta.entities is None
        assert meta.caller == CallerInfo()
        assert meta.sentiment and meta.sentiment.label == "negative"
        assert meta.intent and meta.intent.primary_intent == "billing"
        assert meta.topics and meta.topics.topics == ["factura"]
        assert meta.conversation_metrics.turn_count == 1 and meta.audio and meta.audio.duration_seconds > 0
        assert meta.extra["agent_id"] == "agent-7"


def test_old_processed_audio_goes_analytics_stay(store_setup: StoreSetup) -> None:
    store = store_setup.store
    save_call(store, "rec-old", NOW - timedelta(days=40), seed=1)
    waiting = save_call(store, "rec-waiting", NOW - timedelta(days=40), processed=False, seed=2)
    edge = save_call(store, "rec-edge", NOW - timedelta(days=30) + timedelta(minutes=1), seed=3)
    recent = save_call(store, "rec-new", NOW - timedelta(days=2), seed=4)

    dry = apply_retention(store, 30, NOW, dry_run=True)
    assert (dry.retained, dry.unprocessed) == (["rec-old"], ["rec-waiting"])
    assert store.get_transcript("rec-old") == SAID  # nothing changed by the dry run

    report = apply_retention(store, 30, NOW)

    assert (report.retained, report.unprocessed, report.failed) == (["rec-old"], ["rec-waiting"], {})
    assert report.objects_removed >= 2  # audio and transcript (and the S3 download cache, if any)
    assert_retained(store, "rec-old", NOW)
    for rid, audio in (("rec-waiting", waiting), ("rec-edge", edge), ("rec-new", recent)):
        assert store.get_recording(rid) == audio
        assert store.get_metadata(rid).retention is None
    # A new stage version reprocesses old results, but never those whose audio is gone.
    assert work_reason(store.get_metadata("rec-new"), PipelineSettings()) == "stale stage versions"
    assert work_reason(store.get_metadata("rec-old"), PipelineSettings()) is None

    again = apply_retention(store, 30, NOW + timedelta(seconds=30))  # idempotent: nothing to do
    assert (again.retained, again.objects_removed) == ([], 0)
    store_setup.mark_processed("rec-waiting")  # retained on the first run after processing
    assert sorted(apply_retention(store, 30, NOW + timedelta(days=1)).retained) == ["rec-edge", "rec-waiting"]


def test_mirrored_store_retains_both_sides_and_sync_still_works(mirrored_store: MirroredStore) -> None:
    save_call(mirrored_store, "rec-both", NOW - timedelta(days=10), seed=5)
    report = apply_retention(mirrored_store, 7, NOW)
    assert report.retained == ["rec-both"] and not report.failed
    assert_retained(mirrored_store, "rec-both", NOW)
    mirrored_store.local._put(store_index.pending_sync_key("rec-both"), b"token")  # as after an outage
    sync = mirrored_store.sync_pending()
    assert (sync.uploaded, sync.failed, sync.remaining) == (["rec-both"], {}, 0)
    s3 = mirrored_store.s3
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket)["Contents"]]
    assert not [k for k in keys if k.endswith((".wav", ".txt"))], keys


def test_dagster_job_applies_retention(store_setup: StoreSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    save_call(store_setup.store, "rec-job-old", now - timedelta(days=40), seed=6)
    recent = save_call(store_setup.store, "rec-job-new", now - timedelta(days=1), seed=7)

    unset = apply_retention_job.execute_in_process(resources={"store": store_setup.resource})
    assert unset.success  # RETENTION_DAYS unset: keep forever
    assert store_setup.store.get_transcript("rec-job-old") == SAID

    monkeypatch.setenv("RETENTION_DAYS", "30")
    result = apply_retention_job.execute_in_process(resources={"store": store_setup.resource})

    assert result.success
    with pytest.raises(RecordingNotFoundError):
        store_setup.store.get_recording("rec-job-old")
    assert store_setup.store.get_metadata("rec-job-old").retention is not None
    assert store_setup.store.get_recording("rec-job-new") == recent


def test_schedule_runs_daily_at_three_in_local_time_only_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert defs.get_job_def("apply_retention") is not None
    assert {s.name: s.cron_schedule for s in defs.schedules}["retention_schedule"] == "0 3 * * *"
    schedule = build_retention_schedule(apply_retention_job, timezone="Europe/Madrid", hour=3)
    scheduled = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # 00:30 on the 10th in Madrid

    def tick() -> Any:
        with dg.build_schedule_context(scheduled_execution_time=scheduled) as context:
            return schedule.evaluate_tick(context)

    assert "kept forever" in (tick().skip_message or "")
    monkeypatch.setenv("RETENTION_DAYS", "many")
    assert "whole number" in (tick().skip_message or "")
    monkeypatch.setenv("RETENTION_DAYS", "90")
    (request,) = tick().run_requests
    assert request.run_key == "retention:2026-03-10"
    assert request.run_config == {"ops": {"apply_retention_policy": {"config": {"days": 90}}}}
    assert retention_days() == 90


def test_cli_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "recordings"
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(root))
    setup = local_setup(root)
    save_call(setup.store, "rec-cli", datetime.now(UTC) - timedelta(days=20), seed=8)

    assert cli.main(["retention"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "RETENTION_DAYS" in err
    assert cli.main(["retention", "--days", "10", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["retained_ids"] == ["rec-cli"]
    assert setup.store.get_transcript("rec-cli") == SAID
    monkeypatch.setenv("RETENTION_DAYS", "10")
    assert cli.main(["retention"]) == 0
    assert json.loads(capsys.readouterr().out)["retained"] == 1
    with pytest.raises(RecordingNotFoundError):
        setup.store.get_recording("rec-cli")
