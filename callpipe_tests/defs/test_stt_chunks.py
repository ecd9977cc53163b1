"""The ``transcripts`` graph asset: the day's work cut into chunks, one mapped STT step each, merged
back into one partition value; a recording leased by another run is reported busy, not redone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from callpipe.defs.assets import (
    DEFAULT_STT_CHUNK_SIZE,
    STT_CHUNK_ENV,
    plan_chunks,
    recordings,
    stt_chunk_size,
)
from callpipe.defs.assets import transcripts as transcripts_asset
from callpipe.defs.resources import StageModelsResource
from callpipe.stage_runner import PipelineSettings, claim
from callpipe_tests.defs.conftest import local_setup

DAY = "2026-03-02"


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 17, 33])
@pytest.mark.parametrize("size", [1, 2, 8])
def test_plan_chunks_puts_every_recording_in_exactly_one_small_chunk(count: int, size: int) -> None:
    ids = [f"rec-{n}" for n in range(count)]
    chunks = plan_chunks(ids, size)
    assert [rid for chunk in chunks for rid in chunk] == ids  # order kept, nothing lost or repeated
    assert len(chunks) == -(-count // size)  # the fewest chunks
    assert all(1 <= len(chunk) <= size for chunk in chunks)
    assert not chunks or max(map(len, chunks)) - min(map(len, chunks)) <= 1  # as even as possible


def test_plan_chunks_drops_repeated_ids() -> None:
    assert plan_chunks(["a", "b", "a", "c"], 2) == [["a"], ["b", "c"]]


def test_chunk_size_from_the_environment() -> None:
    assert stt_chunk_size({}) == DEFAULT_STT_CHUNK_SIZE
    assert stt_chunk_size({STT_CHUNK_ENV: " 3 "}) == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError, match=STT_CHUNK_ENV):
            stt_chunk_size({STT_CHUNK_ENV: bad})


def test_day_is_transcribed_in_chunks_and_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STT_CHUNK_ENV, "2")
    setup = local_setup(tmp_path / "recordings")
    start = datetime.fromisoformat(f"{DAY}T09:00:00+00:00").astimezone(UTC)
    ids = [f"rec-{n}" for n in range(5)]
    for n, recording_id in enumerate(ids):
        setup.save(recording_id, start + timedelta(minutes=n))
    resources = {
        "store": setup.resource,
        # Every live transcript is kept (threshold 1.0): the STT stage runs, Whisper does not.
        "models": StageModelsResource(retranscribe_wer_threshold=1.0),
    }

    with dg.instance_for_test() as instance:
        assets = [recordings, transcripts_asset]
        manifest = dg.materialize(
            assets, selection=[recordings], partition_key=DAY, resources=resources, instance=instance
        )
        assert manifest.asset_value("recordings")["work"] == ids
        # Another run takes rec-3 after the manifest was made: its chunk reports it busy, not redone.
        assert claim(setup.store, "rec-3", "another-run", PipelineSettings())
        result = dg.materialize(
            assets, selection=[transcripts_asset], partition_key=DAY, resources=resources, instance=instance
        )
        assert result.success
        assert result.asset_value("transcripts") == {
            "ok": ["rec-0", "rec-1", "rec-2", "rec-4"],
            "failed": {},
            "busy": {"rec-3": "held by another run"},
        }
        steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        chunk_steps = {f"transcripts.transcribe_chunk[chunk_{n}]" for n in range(3)}
        assert steps == chunk_steps | {"transcripts.plan_stt_chunks", "transcripts.merge_stt_chunks"}
        (materialization,) = result.asset_materializations_for_node("transcripts")
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        assert (metadata["chunks"], metadata["ran"], metadata["busy"], metadata["failed"]) == (3, 4, 1, 0)
        assert materialization.partition == DAY

    for recording_id in ids:
        meta = setup.store.get_metadata(recording_id)
        owner = "another-run" if recording_id == "rec-3" else result.run_id
        assert meta.status.lease_owner == owner
        assert ("stt" in meta.provenance.stage_inputs) == (recording_id != "rec-3")
