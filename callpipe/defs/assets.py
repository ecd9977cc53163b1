"""The day-partitioned asset graph; each asset is a thin call into :mod:`callpipe.pipeline`.

Assets hold small tables (recording ids and per-recording status), never audio or models:
the recordings' metadata documents are the per-recording results.
"""

from typing import Any

import dagster as dg

from callpipe.batch import CONCURRENCY_TAG, ONLY_TAG
from callpipe.defs.executors import GPU_OP_TAGS
from callpipe.defs.partitions import call_date_partitions, partition_window
from callpipe.defs.resources import RecordingStoreResource, StageModelsResource
from callpipe.pipeline import PipelineSettings, StageReport, claim, finalize, run_stage, stage_versions
from callpipe.summary import day_manifest, day_summary, markdown_table

GPU_TAGS = GPU_OP_TAGS
"""STT steps: Celery `gpu` queue, one GPU per Kubernetes pod; the `gpu` pool bounds them on one machine."""


def _settings(context: dg.AssetExecutionContext) -> PipelineSettings:
    """Batch settings from the environment; ``callpipe batch --concurrent N`` overrides by run tag."""
    concurrent = context.run.tags.get(CONCURRENCY_TAG)
    return PipelineSettings.from_env(**({"max_concurrent": int(concurrent)} if concurrent else {}))


def _versions(*stages: str) -> str:
    current = stage_versions()
    return "+".join(f"{s}.{current[s]}" for s in stages)


def _stage_output(
    context: dg.AssetExecutionContext, report: StageReport, upstream_failed: dict[str, str]
) -> dict[str, Any]:
    slowest = sorted(report.seconds.items(), key=lambda kv: kv[1], reverse=True)[:5]
    context.add_output_metadata(
        {
            "ran": len(report.ran),
            "cached": len(report.cached),
            "failed": len(report.failed),
            "seconds": round(sum(report.seconds.values()), 3),
            "slowest": dg.MetadataValue.md(markdown_table(["recording", "seconds"], slowest)),
            "failures": dg.MetadataValue.md(
                markdown_table(["recording", "error"], sorted(report.failed.items()))
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
    report = run_stage(
        store.get_store(), stage, upstream["ok"], models.services, max_concurrent=settings.max_concurrent
    )
    return _stage_output(context, report, upstream["failed"])


@dg.asset(partitions_def=call_date_partitions, group_name="ingest", code_version="1", kinds={"python"})
def recordings(context: dg.AssetExecutionContext, store: RecordingStoreResource) -> dict[str, Any]:
    """The day's manifest: every recording of the call date and why it needs work (or not)."""
    start, end = partition_window(context.partition_key)
    manifest = day_manifest(store.get_store(), start, end, _settings(context))
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


@dg.asset(
    partitions_def=call_date_partitions,
    group_name="speech",
    code_version=_versions("stt"),
    pool="gpu",
    op_tags=GPU_TAGS,
    kinds={"python"},
)
def transcripts(
    context: dg.AssetExecutionContext,
    recordings: dict[str, Any],
    store: RecordingStoreResource,
    models: StageModelsResource,
) -> dict[str, Any]:
    """Live transcript kept, or re-transcribed with Whisper when its estimated WER is high."""
    settings = _settings(context)
    backend = store.get_store()
    claimed = [rid for rid in recordings["work"] if claim(backend, rid, context.run.run_id, settings)]
    busy = {rid: "held by another run" for rid in recordings["work"] if rid not in claimed}
    context.log.info("claimed %d of %d recordings", len(claimed), len(recordings["work"]))
    report = run_stage(backend, "stt", claimed, models.services, max_concurrent=settings.max_concurrent)
    output = _stage_output(context, report, {})
    output["busy"] = busy
    return output


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
    """Writes each enriched metadata JSON back: processed=true, status and provenance with run id."""
    parts = (call_sentiment, call_intents, call_entities, call_topics)
    failed: dict[str, str] = {}
    for part in parts:
        failed.update(part["failed"])
    ready = sorted(set.intersection(*(set(p["ok"]) for p in parts)) - set(failed))
    failed.update(finalize(store.get_store(), ready, run_id=context.run.run_id, services=models.services))
    processed = [rid for rid in ready if rid not in failed]
    context.add_output_metadata(
        {
            "processed": len(processed),
            "failed": len(failed),
            "failures": dg.MetadataValue.md(markdown_table(["recording", "error"], sorted(failed.items()))),
            "models": dg.MetadataValue.json(models.services.model_names()),
        }
    )
    return {"processed": processed, "failed": failed}


@dg.asset(partitions_def=call_date_partitions, group_name="reporting", code_version="1", kinds={"python"})
def daily_call_summary(
    context: dg.AssetExecutionContext, call_analytics: dict[str, Any], store: RecordingStoreResource
) -> dict[str, Any]:
    """Counts, WER before/after, sentiment and intent distributions and slowest calls of the day."""
    start, end = partition_window(context.partition_key)
    summary = day_summary(store.get_store(), start, end)
    context.add_output_metadata(summary.pop("ui_metadata"))
    return summary


ALL_ASSETS = [
    recordings,
    transcripts,
    corrected_transcripts,
    call_sentiment,
    call_intents,
    call_entities,
    call_topics,
    call_analytics,
    daily_call_summary,
]
