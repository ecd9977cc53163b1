"""``callpipe batch`` runs the Dagster job on the configured instance; ``reprocess`` re-queues."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from callpipe.cli import main
from callpipe.demo_calls import load_demo_calls
from callpipe.recorder import Recorder
from callpipe.storage import get_audio_storage

pytestmark = pytest.mark.slow


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "recordings"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return tmp_path


def test_single_then_unprocessed_then_reprocess(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call = next(c for c in load_demo_calls() if c.call_id == "tarjeta")
    recorder = Recorder(get_audio_storage())
    for n, rid in enumerate(["card-1", "card-2"]):
        recorder.record_sync(
            call.audio,
            call.conversation_id,
            transcription=call.live_text,
            word_confidences=call.live_word_confidences,
            audio_format="flac",
            timestamp=datetime(2026, 11, 10, 9, n, tzinfo=UTC),
            recording_id=rid,
        )

    assert main(["batch", "--mode", "single", "--recording-id", "card-1"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["processed"] == 1 and stats["runs"][0]["partition"] == "2026-11-10"
    store = get_audio_storage()
    assert store.get_metadata("card-1").processed
    assert not store.get_metadata("card-2").processed  # single touches only its recording

    assert main(["show", "card-1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["processed"] and shown["transcription"]["corrected_text"]
    assert {"sentiment", "intent", "entities", "topics"} <= {k for k, v in shown.items() if v}

    assert main(["batch", "--mode", "unprocessed"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["processed"] == 1 and stats["skipped"] == 1
    assert store.get_metadata("card-2").processed

    assert main(["reprocess", "card-2", "--stage", "sentiment"]) == 0
    assert json.loads(capsys.readouterr().out)["flagged"] == 1
    flagged = store.get_metadata("card-2")
    assert not flagged.processed and flagged.status.reprocess_requested
    assert flagged.status.reprocess_stages == ["sentiment"]
    before = flagged.provenance.stage_inputs
    assert (
        main(["batch", "--mode", "date_range", "--start-date", "2026-11-10", "--end-date", "2026-11-10"]) == 0
    )
    stats = json.loads(capsys.readouterr().out)
    assert stats["processed"] == 1
    again = store.get_metadata("card-2")
    assert again.processed and not again.status.reprocess_requested
    assert again.provenance.stage_inputs == before  # same inputs: only the flagged stage re-ran
    assert again.processing_metrics.stage_seconds["sentiment"] > 0

    with dg.DagsterInstance.get() as instance:  # the runs live on the configured instance
        runs = instance.get_run_records(dg.RunsFilter(job_name="process_call_date"))
    assert len(runs) == 3 and all(r.dagster_run.is_success for r in runs)
