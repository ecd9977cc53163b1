"""What a day of recordings looks like: the work manifest before a run, the summary after it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

from callpipe.failures import one_line
from callpipe.leases import OwnerCheck
from callpipe.schema import ProcessingStatus, RecordingMetadata
from callpipe.stage_runner import PipelineSettings, work_reason
from callpipe.storage import RecordingRef, RecordingStore, StorageError


def day_refs(store: RecordingStore, start: datetime, end: datetime) -> Iterator[RecordingRef]:
    """Index entries of the recordings with ``start <= timestamp < end`` (no document reads)."""
    cursor = None
    until = end - timedelta(microseconds=1)
    while True:
        page = store.list_recordings(since=start, until=until, limit=1000, cursor=cursor)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def day_manifest(
    store: RecordingStore,
    start: datetime,
    end: datetime,
    settings: PipelineSettings,
    is_owner_alive: OwnerCheck | None = None,
) -> dict[str, Any]:
    """Which recordings of the window need offline work, and why; unreadable ones are listed.

    ``is_owner_alive`` voids the leases of runs known to be over (:func:`~callpipe.stage_runner.work_reason`).
    """
    work: list[str] = []
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    seen: list[str] = []
    for ref in day_refs(store, start, end):
        seen.append(ref.recording_id)
        try:
            meta = store.get_metadata(ref.recording_id)
        except StorageError as exc:
            errors[ref.recording_id] = one_line(exc)  # shown in the UI: redacted
            reasons["unreadable"] += 1
            continue
        reason = work_reason(meta, settings, is_owner_alive=is_owner_alive)
        if reason is None:
            skipped[ref.recording_id] = meta.status.status.value
            reasons[f"skip: {meta.status.status.value}"] += 1
        else:
            work.append(ref.recording_id)
            reasons[reason] += 1
    return {"all": seen, "work": work, "skipped": skipped, "errors": errors, "reasons": dict(reasons)}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small markdown table for Dagster's UI (``_none_`` when empty)."""
    if not rows:
        return "_none_"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _distribution(values: list[str]) -> list[tuple[str, int, str]]:
    counts = Counter(values)
    total = sum(counts.values()) or 1
    return [(k, n, f"{100 * n / total:.0f}%") for k, n in counts.most_common()]


def measured_wer(meta: RecordingMetadata) -> tuple[float | None, float | None]:
    """(live, final) WER against ``extra["reference_text"]`` when the call carries one (demo calls)."""
    reference = meta.extra.get("reference_text")
    if not reference:
        return None, None
    from callpipe.stt.wer import word_error_rate

    live = meta.online_transcription or meta.transcription
    final = meta.transcription.corrected_text or meta.transcription.text
    return word_error_rate(reference, live.text), word_error_rate(reference, final)


def day_summary(store: RecordingStore, start: datetime, end: datetime) -> dict[str, Any]:
    """Counts, WER before/after, sentiment and intent distributions and the slowest calls."""
    docs: list[RecordingMetadata] = []
    unreadable = 0
    for ref in day_refs(store, start, end):
        try:
            docs.append(store.get_metadata(ref.recording_id))
        except StorageError:
            unreadable += 1
    processed = [d for d in docs if d.processed]
    statuses = Counter(d.status.status.value for d in docs)
    est_before = [d.online_transcription.estimated_wer for d in processed if d.online_transcription]
    est_after = [d.transcription.estimated_wer for d in processed]
    measured = [measured_wer(d) for d in processed]
    measured = [(b, a) for b, a in measured if b is not None and a is not None]
    slowest = sorted(processed, key=lambda d: d.processing_metrics.total_seconds or 0.0, reverse=True)[:5]
    summary: dict[str, Any] = {
        "recordings": len(docs),
        "processed": len(processed),
        "failed": statuses.get(ProcessingStatus.FAILED.value, 0),
        "pending": len(docs) - len(processed) - statuses.get(ProcessingStatus.FAILED.value, 0),
        "unreadable": unreadable,
        "retranscribed": sum(d.transcription.retranscribed for d in processed),
        "estimated_wer_before": _mean(est_before),
        "estimated_wer_after": _mean(est_after),
        "measured_wer_before": _mean([b for b, _ in measured]),
        "measured_wer_after": _mean([a for _, a in measured]),
        "measured_calls": len(measured),
        "sentiment": dict(Counter(d.sentiment.label for d in processed if d.sentiment)),
        "intents": dict(Counter(d.intent.primary_intent for d in processed if d.intent)),
    }
    summary["ui_metadata"] = {
        **{k: v for k, v in summary.items() if not isinstance(v, dict) and v is not None},
        "sentiment_distribution": markdown_table(
            ["label", "calls", "share"], _distribution([d.sentiment.label for d in processed if d.sentiment])
        ),
        "intent_distribution": markdown_table(
            ["intent", "calls", "share"],
            _distribution([d.intent.primary_intent for d in processed if d.intent]),
        ),
        "slowest_recordings": markdown_table(
            ["recording", "seconds", "retranscribed"],
            [
                (d.recording_id, d.processing_metrics.total_seconds, d.transcription.retranscribed)
                for d in slowest
            ],
        ),
    }
    return summary


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(mean(present), 4) if present else None
