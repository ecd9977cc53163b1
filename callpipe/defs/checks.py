"""Per-partition asset checks. The failure-rate check (on the ``calls`` table) blocks the day's
summary."""

import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import dagster as dg

from callpipe.defs import partitions
from callpipe.defs.assets import daily_call_summary, recordings
from callpipe.defs.partitions import partition_window
from callpipe.defs.resources import AnalyticsTablesResource, RecordingStoreResource
from callpipe.schema import RecordingMetadata
from callpipe.settings import Settings
from callpipe.storage import RecordingStore, StorageError
from callpipe.summary import day_refs


def max_failure_rate() -> float:
    """``CALLPIPE_MAX_FAILURE_RATE`` now (default 0.1), read when the check runs."""
    return Settings.from_env(only=["CALLPIPE_MAX_FAILURE_RATE"]).callpipe_max_failure_rate

PARTITIONED_CHECK_PREVIEW = r"Specifying a partitions_def on an AssetCheckSpec is currently in preview"
"""Dagster 1.13 warns on every import that per-partition checks are a preview feature; we rely on
them on purpose, so this one warning is silenced here, where the checks are defined."""


CheckFn = Callable[..., dg.AssetCheckResult]


def partitioned_check(**kwargs: Any) -> Callable[[CheckFn], dg.AssetChecksDefinition]:
    """``dg.asset_check`` over the call-date partitions, without Dagster's preview warning for them."""

    def decorate(fn: CheckFn) -> dg.AssetChecksDefinition:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=PARTITIONED_CHECK_PREVIEW, category=dg.PreviewWarning)
            return dg.asset_check(partitions_def=partitions.call_date_partitions, **kwargs)(fn)

    return decorate


@partitioned_check(
    asset=recordings,
    description="Every recording of the day has readable, valid metadata.",
)
def recordings_have_valid_metadata(recordings: dict[str, Any]) -> dg.AssetCheckResult:
    errors = recordings["errors"]
    return dg.AssetCheckResult(
        passed=not errors,
        metadata={
            "unreadable": len(errors),
            "examples": dg.MetadataValue.json(dict(list(errors.items())[:5])),
        },
    )


@partitioned_check(
    asset=recordings,
    description="No recording id appears twice in the day's index.",
)
def no_duplicate_recording_ids(recordings: dict[str, Any]) -> dg.AssetCheckResult:
    duplicates = sorted(rid for rid, n in Counter(recordings["all"]).items() if n > 1)
    return dg.AssetCheckResult(
        passed=not duplicates, metadata={"duplicates": dg.MetadataValue.json(duplicates)}
    )


@partitioned_check(
    asset="calls",
    blocking=True,
    description=(
        "Failed calls of the day, as the calls table holds them, stay under "
        "CALLPIPE_MAX_FAILURE_RATE (default 10%) of its finished (processed or failed) calls."
    ),
)
def failure_rate_under_threshold(
    context: dg.AssetCheckExecutionContext, store: RecordingStoreResource, tables: AnalyticsTablesResource
) -> dg.AssetCheckResult:
    reader = tables.open(store.get_store(), read_only=True)
    try:
        summary = reader.day_summary(context.partition_key)
    finally:
        reader.close()
    failed, processed = summary["failed"], summary["processed"]
    total = failed + processed
    rate = failed / total if total else 0.0
    limit = max_failure_rate()
    return dg.AssetCheckResult(
        passed=rate <= limit,
        metadata={
            "max_failure_rate": limit,
            "failed": failed,
            "processed": processed,
            "failure_rate": round(rate, 4),
            "failures": dg.MetadataValue.json({f["recording_id"]: f["error"] for f in summary["failures"]}),
        },
    )


def correction_drift(meta: RecordingMetadata) -> dict[str, Any] | None:
    """How far the offline correction moved a processed call's transcript, against how many of its
    words the STT gate estimated wrong; ``None`` when nothing was corrected.

    An independent bound, not the stage's own choice: if ``E`` words of the source were wrong
    (its estimated WER times its words) and the correction changed ``C`` words (word alignment of
    the stored corrected text against the text it was corrected from), at least ``C - E`` changes
    hit right words and are new errors. When ``C - E > E`` (one word of slack) the corrected
    transcript is worse than its source even if every wrong word was fixed: ``worse``.
    """
    from callpipe.stt import estimate_wer
    from callpipe.stt.wer import align_words, normalize_spanish

    transcription = meta.transcription
    if not meta.processed or not transcription.corrected_text:
        return None
    source = normalize_spanish(transcription.text)
    if not source:
        return None
    changed = align_words(source, normalize_spanish(transcription.corrected_text)).errors
    estimated = transcription.estimated_wer
    if estimated is None:
        estimated = estimate_wer(transcription.word_confidences)
    wrong = min(1.0, estimated) * len(source)
    introduced = max(0.0, changed - wrong)
    return {
        "words": len(source),
        "changed": changed,
        "estimated_wrong": round(wrong, 2),
        "new_errors_at_least": round(introduced, 2),
        "worse": introduced > wrong + 1,
    }


def _day_documents(backend: RecordingStore, partition_key: str) -> list[RecordingMetadata]:
    start, end = partition_window(partition_key)
    docs = []
    for ref in day_refs(backend, start, end):
        try:
            docs.append(backend.get_metadata(ref.recording_id))
        except StorageError:
            continue  # counted by the summary and the valid-metadata check
    return docs


def measured_wer(documents: list[RecordingMetadata]) -> tuple[float | None, float | None]:
    """Mean WER of the live and of the stored transcript against a reference text, over the
    processed calls that carry one (``extra.reference_text``: demo and evaluation calls); read from
    the documents as they are now, not from the day's last table write."""
    from callpipe.stt.wer import word_error_rate

    pairs = []
    for meta in documents:
        reference = meta.extra.get("reference_text")
        if not meta.processed or not isinstance(reference, str) or not reference.strip():
            continue
        live = meta.online_transcription or meta.transcription
        final = meta.transcription.corrected_text or meta.transcription.text
        pairs.append((word_error_rate(reference, live.text), word_error_rate(reference, final)))
    if not pairs:
        return None, None
    return (
        round(sum(b for b, _ in pairs) / len(pairs), 4),
        round(sum(a for _, a in pairs) / len(pairs), 4),
    )


@partitioned_check(
    asset=daily_call_summary,
    description=(
        "Offline processing did not make transcripts worse: no corrected transcript changed more "
        "words than the STT gate estimated wrong plus as many again (at least that many changes hit "
        "right words), and where calls carry a reference text the measured WER did not rise."
    ),
)
def wer_not_worse_after_processing(
    context: dg.AssetCheckExecutionContext, daily_call_summary: dict[str, Any], store: RecordingStoreResource
) -> dg.AssetCheckResult:
    drift = {}
    documents = _day_documents(store.get_store(), context.partition_key)
    for meta in documents:
        signals = correction_drift(meta)
        if signals is not None:
            drift[meta.recording_id] = signals
    worse = sorted(rid for rid, signals in drift.items() if signals["worse"])
    measured = measured_wer(documents)
    measured_worse = None not in measured and measured[1] > measured[0] + 1e-9
    changed = sum(s["changed"] for s in drift.values())
    words = sum(s["words"] for s in drift.values())
    return dg.AssetCheckResult(
        passed=not worse and not measured_worse,
        metadata={
            "corrected_calls": len(drift),
            "corrections_worse": len(worse),
            "worse_examples": dg.MetadataValue.json({rid: drift[rid] for rid in worse[:5]}),
            "changed_word_share": round(changed / words, 4) if words else 0.0,
            "estimated_before": daily_call_summary["estimated_wer_before"],
            "estimated_after": daily_call_summary["estimated_wer_after"],
            "measured_before": measured[0],
            "measured_after": measured[1],
        },
    )


ALL_CHECKS = [
    recordings_have_valid_metadata,
    no_duplicate_recording_ids,
    failure_rate_under_threshold,
    wer_not_worse_after_processing,
]
