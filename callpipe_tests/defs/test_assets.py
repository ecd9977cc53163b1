"""A day partition materialized in-process with the real Whisper model on the demo calls."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from callpipe.defs.assets import ALL_ASSETS, daily_call_summary
from callpipe.defs.checks import ALL_CHECKS
from callpipe.defs.resources import AnalyticsTablesResource, RecordingStoreResource, StageModelsResource
from callpipe.stage_runner import STAGE_ORDER, stage_versions
from callpipe.storage import LocalStore
from callpipe_tests.demo_recordings import record_demo_calls

pytestmark = pytest.mark.slow

GOOD_DAY = "2026-11-20"
MIXED_DAY = "2026-11-21"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    root = tmp_path_factory.mktemp("store")
    store = LocalStore(root)
    record_demo_calls(store, GOOD_DAY, ["saldo", "tarjeta", "factura"])
    record_demo_calls(store, MIXED_DAY, ["baja", "correo", "transferencia"])
    # The transfer call's audio is damaged on disk after it was saved.
    audio = store.local_audio_path(f"{MIXED_DAY}-transferencia")
    audio.write_bytes(b"\x00garbage" * 2000)
    yield store


def _materialize(store: LocalStore, day: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    resources = {
        "store": RecordingStoreResource(backend="local", local_path=str(store.root)),
        "tables": AnalyticsTablesResource(),
        "models": StageModelsResource(),
    }
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        partition_key=day,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def first_run(store: LocalStore, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return _materialize(store, GOOD_DAY, instance)


def test_day_partition_writes_full_metadata(store: LocalStore, first_run: dg.ExecuteInProcessResult) -> None:
    assert first_run.success
    analytics = first_run.asset_value("call_analytics")
    assert sorted(analytics["processed"]) == [f"{GOOD_DAY}-{c}" for c in ("factura", "saldo", "tarjeta")]
    assert analytics["failed"] == {}
    for recording_id in analytics["processed"]:
        meta = store.get_metadata(recording_id)
        assert meta.processed and meta.status.status == "processed" and meta.status.lease_owner is None
        assert meta.processing_mode == "offline"
        assert meta.provenance.run_id == first_run.run_id
        assert meta.provenance.stage_versions == stage_versions()
        assert set(meta.provenance.stage_inputs) == set(STAGE_ORDER)
        assert meta.provenance.models["stt"]
        assert meta.online_transcription is not None and meta.online_transcription.estimated_wer is not None
        assert meta.transcription.corrected_text
        assert meta.transcription.correction_method == "offline"
        assert meta.sentiment is not None and meta.intent is not None
        assert meta.entities is not None and meta.topics is not None and meta.topics.keywords
        assert meta.conversation_metrics.talk_time_seconds and meta.conversation_metrics.talk_time_seconds > 5
        assert store.get_transcript(recording_id) == meta.transcription.corrected_text
        speakers = [t.speaker for t in meta.turns]
        assert speakers[0] == "agent" and "customer" in speakers  # stereo: agent left, customer right
        assert meta.conversation_metrics.talk_time_agent_seconds and meta.conversation_metrics.turn_count
    card = store.get_metadata(f"{GOOD_DAY}-tarjeta")
    assert card.intent.primary_intent in {"card_issue", "fraud_report"}
    bill = store.get_metadata(f"{GOOD_DAY}-factura")
    assert bill.sentiment.label in {"negative", "frustrated"}
    summary = first_run.asset_value("daily_call_summary")
    assert summary["processed"] == 3 and summary["measured_calls"] == 3
    assert summary["measured_wer_after"] <= summary["measured_wer_before"]


def test_rerunning_a_finished_day_skips_everything(
    store: LocalStore, instance: dg.DagsterInstance, first_run: dg.ExecuteInProcessResult
) -> None:
    revisions = {rid: store.get_metadata(rid).revision for rid in first_run.asset_value("recordings")["all"]}
    second = _materialize(store, GOOD_DAY, instance)
    assert second.success
    manifest = second.asset_value("recordings")
    assert manifest["work"] == [] and len(manifest["skipped"]) == 3
    assert second.asset_value("transcripts")["ok"] == []
    assert {rid: store.get_metadata(rid).revision for rid in revisions} == revisions


def test_corrupt_recording_is_isolated(store: LocalStore, instance: dg.DagsterInstance) -> None:
    result = _materialize(store, MIXED_DAY, instance)
    analytics = result.asset_value("call_analytics")
    bad = f"{MIXED_DAY}-transferencia"
    assert sorted(analytics["processed"]) == [f"{MIXED_DAY}-baja", f"{MIXED_DAY}-correo"]
    assert list(analytics["failed"]) == [bad]
    meta = store.get_metadata(bad)
    assert meta.status.status == "failed" and not meta.processed
    assert meta.status.error.startswith("stt:") and meta.status.attempts == 1
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["failure_rate_under_threshold"] is False  # 1 of 3 failed: over 10%
    assert not result.success  # the blocking check stops the day's summary


def test_wer_check_fails_when_a_correction_rewrites_right_words(
    store: LocalStore, first_run: dg.ExecuteInProcessResult, instance: dg.DagsterInstance
) -> None:
    evaluations = {e.check_name: e for e in first_run.get_asset_check_evaluations()}
    assert evaluations["wer_not_worse_after_processing"].passed
    assert evaluations["wer_not_worse_after_processing"].metadata["corrected_calls"].value == 3
    # Production calls carry no reference text, so nothing can be measured against one; and a
    # broken corrector rewrote one call's transcript into other words: the check must see it.
    ids = [f"{GOOD_DAY}-{c}" for c in ("factura", "saldo", "tarjeta")]
    originals = {rid: store.get_metadata(rid) for rid in ids}
    victim = f"{GOOD_DAY}-saldo"
    garbled = " ".join(f"palabra{i}" for i, _ in enumerate(originals[victim].transcription.text.split()))

    def as_in_production(meta):
        meta.extra.pop("reference_text", None)
        if meta.recording_id == victim:
            meta.transcription.corrected_text = garbled

    for rid in ids:
        store.modify_metadata(rid, as_in_production)
    try:
        result = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            selection=[daily_call_summary.key],
            partition_key=GOOD_DAY,
            resources={
                "store": RecordingStoreResource(backend="local", local_path=str(store.root)),
                "tables": AnalyticsTablesResource(),
                "models": StageModelsResource(),
            },
            instance=instance,
            raise_on_error=False,
        )
        evaluation = {e.check_name: e for e in result.get_asset_check_evaluations()}[
            "wer_not_worse_after_processing"
        ]
        assert evaluation.metadata["measured_before"].value is None  # no reference text
        assert evaluation.passed is False
        assert evaluation.metadata["corrections_worse"].value == 1
        assert list(evaluation.metadata["worse_examples"].value) == [victim]
    finally:
        for rid, original in originals.items():

            def restore(meta, original=original):
                meta.extra = original.extra
                meta.transcription.corrected_text = original.transcription.corrected_text

            store.modify_metadata(rid, restore)
