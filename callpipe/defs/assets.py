"""The day-partitioned asset graph; each asset is a thin call into :mod:`callpipe.stage_runner` or
:mod:`callpipe.finalizer`.

Assets hold small tables (recording ids and per-recording status), never audio or models:
the recordings' metadata documents are the per-recording results. ``transcripts`` is a graph:
the day's work is cut into chunks that separate GPU workers transcribe at once, then merged, so
users still see one partition per day.
"""

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

from callpipe.defs.executors import GPU_OP_TAGS, GPU_POOL
from callpipe.defs.partitions import call_date_partitions, partition_window
from callpipe.defs.resources import RecordingStoreResource, StageModelsResource
from callpipe.defs.run_owners import run_owner_check
from callpipe.defs.table_assets import analytics_tables, daily_call_summary
from callpipe.defs.table_metadata import metadata_table
from callpipe.defs.tags import CONCURRENCY_TAG, ONLY_TAG
from callpipe.finalizer import finalize
from callpipe.settings import Settings
from callpipe.stage_runner import PipelineSettings, StageReport, claim, run_stage, stage_versions
from callpipe.summary import day_manifest

STT_CHUNK_ENV = "CALLPIPE_STT_CHUNK_SIZE"
DEFAULT_STT_CHUNK_SIZE = Settings.model_fields["callpipe_stt_chunk_size"].default
"""Recordings per STT chunk step: small enough to spread a day over GPU workers, large enough that
a step's start-up (process, model load) stays small next to its audio."""

Context = dg.AssetExecutionContext | dg.OpExecutionContext


def _settings(context: Context) -> PipelineSettings:
    """Batch settings from the environment; ``callpipe batch --concurrent N`` overrides by run tag."""
    concurrent = context.run.tags.get(CONCURRENCY_TAG)
    return PipelineSettings.from_env(**({"max_concurrent": int(concurrent)} if concurrent else {}))


def _versions(*stages: str) -> str:
    current = stage_versions()
    return "+".join(f"{s}.{current[s]}" for s in stages)


def _stage_output(
    context: Context,
    report: StageReport,
    upstream_failed: dict[str, str],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    slowest = sorted(report.seconds.items(), key=lambda kv: kv[1], reverse=True)[:5]
    context.add_output_metadata(
        {
            **(extra or {}),
            "ran": len(report.ran),
            "cached": len(report.cached),
            "failed": len(report.failed),
            "seconds": round(sum(report.seconds.values()), 3),
            "slowest": metadata_table([{"recording_id": r, "seconds": s} for r, s in slowest]),
            "failures": metadata_table(
                [{"recording_id": r, "error": e} for r, e in sorted(report.failed.items())]
            ),
        }
    )
    return {"ok": sorted(report.ok), "failed": {**upstream_failed, **report.failed}}


def _run_after(
    context: dg.AssetExecutionContext,
    stage: str,
    upstream: dict[str, Any],
    store: RecordingStoreResource,
    models: StageModelsResource,
) -> dict[str, Any]:
    """Run ``stage`` on the recordings the upstream asset finished; its failures are carried on."""
    settings = _settings(context)
    ids, owner = upstream["ok"], context.run.run_id
    report = run_stage(store.get_store(), stage, ids, models.services, owner=owner, settings=settings)
    return _stage_output(context, report, upstream["failed"])


@dg.asset(partitions_def=call_date_partitions, group_name="ingest", code_version="1", kinds={"python"})
def recordings(context: dg.AssetExecutionContext, store: RecordingStoreResource) -> dict[str, Any]:
    """The day's manifest: every recording of the call date and why it needs work (or not)."""
    start, end = partition_window(context.partition_key)
    alive = run_owner_check(context.instance)
    manifest = day_manifest(store.get_store(), start, end, _settings(context), alive)
    only = context.run.tags.get(ONLY_TAG)
    if only:
        wanted = set(only.split(","))
        manifest["work"] = [rid for rid in manifest["work"] if rid in wanted]
    context.add_output_metadata(
        {
            "recordings": len(manifest["all"]),
            "to_process": len(manifest["work"]),
            "skipped": len(manifest["skipped"]),
            "unreadable": len(manifest["errors"]),
            "reasons": dg.MetadataValue.json(manifest["reasons"]),
        }
    )
    return manifest


def stt_chunk_size(environ: Mapping[str, str] | None = None) -> int:
    """Recordings per STT chunk from ``CALLPIPE_STT_CHUNK_SIZE`` (default 8)."""
    return Settings.from_env(environ, only=[STT_CHUNK_ENV]).callpipe_stt_chunk_size


def plan_chunks(recording_ids: Sequence[str], size: int) -> list[list[str]]:
    """Split ``recording_ids`` into the fewest chunks of at most ``size``, as even as possible,
    keeping their order; each id lands in exactly one chunk (repeats are dropped)."""
    ids = list(dict.fromkeys(recording_ids))
    count = math.ceil(len(ids) / size)
    return [ids[i * len(ids) // count : (i + 1) * len(ids) // count] for i in range(count)]


@dg.op(out=dg.DynamicOut(list))
def plan_stt_chunks(
    context: dg.OpExecutionContext, recordings: dict[str, Any]
) -> Iterator[dg.DynamicOutput[list[str]]]:
    """One ``transcribe_chunk`` step per chunk of the day's work list; none when nothing is due."""
    chunks = plan_chunks(recordings["work"], stt_chunk_size())
    context.log.info("%d recordings in %d STT chunks", len(recordings["work"]), len(chunks))
    for index, chunk in enumerate(chunks):
        yield dg.DynamicOutput(chunk, mapping_key=f"chunk_{index}")


@dg.op(tags=GPU_OP_TAGS, pool=GPU_POOL)  # Celery `gpu` queue, a GPU per k8s pod
def transcribe_chunk(
    context: dg.OpExecutionContext,
    chunk: list[str],
    store: RecordingStoreResource,
    models: StageModelsResource,
) -> dict[str, Any]:
    """Claim the chunk's recordings (a lease per recording), then keep each live transcript or
    re-transcribe it with Whisper when its estimated WER is high."""
    settings = _settings(context)
    backend = store.get_store()
    alive, owner = run_owner_check(context.instance), context.run.run_id
    claimed = [rid for rid in chunk if claim(backend, rid, owner, settings, is_owner_alive=alive)]
    busy = {rid: "held by another run" for rid in chunk if rid not in claimed}
    context.log.info("claimed %d of %d recordings", len(claimed), len(chunk))
    report = run_stage(backend, "stt", claimed, models.services, owner=owner, settings=settings)
    context.add_output_metadata(
        {
            "recordings": dg.MetadataValue.json(list(chunk)),
            "ran": dg.MetadataValue.json(sorted(report.ran)),
            "cached": len(report.cached),
            "failed": len(report.failed),
            "busy": len(busy),
            "seconds": round(sum(report.seconds.values()), 3),
        }
    )
    return {
        "ran": report.ran,
        "cached": report.cached,
        "failed": report.failed,
        "seconds": report.seconds,
        "busy": busy,
    }


@dg.op
def merge_stt_chunks(context: dg.OpExecutionContext, chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The chunks' results as one day's ``transcripts`` value and materialization metadata."""
    report, busy = StageReport("stt"), {}
    for part in chunks:
        report.ran += part["ran"]
        report.cached += part["cached"]
        report.failed.update(part["failed"])
        report.seconds.update(part["seconds"])
        busy.update(part["busy"])
    output = _stage_output(context, report, {}, {"chunks": len(chunks), "busy": len(busy)})
    output["busy"] = busy
    return output


@dg.graph_asset(
    partitions_def=call_date_partitions,
    group_name="speech",
    code_version=_versions("stt"),
    kinds={"python"},
)
def transcripts(recordings: dict[str, Any]) -> Any:
    """Live transcript kept, or re-transcribed with Whisper when its estimated WER is high; the
    day's recordings are transcribed in chunks (``CALLPIPE_STT_CHUNK_SIZE``) on GPU workers. Turns:
    stereo calls by channel, mono calls by voice (``callpipe.speakers``; ``unknown`` when the
    voices do not separate)."""
    return merge_stt_chunks(plan_stt_chunks(recordings).map(transcribe_chunk).collect())


@dg.asset(
    partitions_def=call_date_partitions,
    group_name="speech",
    code_version=_versions("correction"),
    kinds={"python"},
)
def corrected_transcripts(
    context: dg.AssetExecutionContext,
    transcripts: dict[str, Any],
    store: RecordingStoreResource,
    models: StageModelsResource,
) -> dict[str, Any]:
    """Hybrid correction (exact dictionary + phonetic + vector) of each transcript."""
    return _run_after(context, "correction", transcripts, store, models)


def _analysis_asset(name: str, stage: str, doc: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        partitions_def=call_date_partitions,
        group_name="analysis",
        code_version=_versions(stage),
        kinds={"python"},
        description=doc,
    )
    def _asset(
        context: dg.AssetExecutionContext,
        corrected_transcripts: dict[str, Any],
        store: RecordingStoreResource,
        models: StageModelsResource,
    ) -> dict[str, Any]:
        return _run_after(context, stage, corrected_transcripts, store, models)

    return _asset


call_sentiment = _analysis_asset("call_sentiment", "sentiment", "Sentiment per call, per turn and trend.")
call_intents = _analysis_asset("call_intents", "intent", "Primary and secondary intents per call.")
call_entities = _analysis_asset(
    "call_entities", "entities", "Accounts, amounts, emails, phones, ids, dates and names per call."
)
call_topics = _analysis_asset("call_topics", "topics", "Topics, keywords and coherence per call.")


@dg.asset(
    partitions_def=call_date_partitions,
    group_name="analysis",
    code_version=_versions(*stage_versions()),
    kinds={"python"},
)
def call_analytics(
    context: dg.AssetExecutionContext,
    call_sentiment: dict[str, Any],
    call_intents: dict[str, Any],
    call_entities: dict[str, Any],
    call_topics: dict[str, Any],
    store: RecordingStoreResource,
    models: StageModelsResource,
) -> dict[str, Any]:
    """Marks each finished recording processed (status, provenance, run id); the day's rows of
    the tables are then written from the documents by the ``calls``, ``turns``, ``entities`` and
    ``day_aggregates`` assets (:mod:`callpipe.defs.table_assets`)."""
    parts = (call_sentiment, call_intents, call_entities, call_topics)
    failed: dict[str, str] = {}
    for part in parts:
        failed.update(part["failed"])
    ready = sorted(set.intersection(*(set(p["ok"]) for p in parts)) - set(failed))
    backend = store.get_store()
    if ready:
        failed.update(finalize(backend, ready, run_id=context.run.run_id, services=models.services))
    processed = [rid for rid in ready if rid not in failed]
    context.add_output_metadata(
        {
            "processed_this_run": len(processed),
            "failed_this_run": len(failed),
            "failures": metadata_table([{"recording_id": r, "error": e} for r, e in sorted(failed.items())]),
            "models": dg.MetadataValue.json(models.services.model_names()),
        }
    )
    if not context.run.tags.get(ONLY_TAG):  # a whole-day run: what it leaves pending is settled
        from callpipe.defs.pending_days import record_left_pending

        record_left_pending(context.instance, context.run.run_id, backend, context.partition_key)
    return {"processed": processed, "failed": failed}


ALL_ASSETS = [
    recordings,
    transcripts,
    corrected_transcripts,
    call_sentiment,
    call_intents,
    call_entities,
    call_topics,
    call_analytics,
    analytics_tables,
    daily_call_summary,
]
