"""The main job on embedded defaults: bundled demo calls into a local store under ./data.

Run by ``make demo`` (``callpipe demo``). Environment variables the user has set win; the
defaults only fill what is missing, so the same command works against S3 or PostgreSQL.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from callpipe.demo_calls import load_demo_calls
from callpipe.pii import DEMO_KEY_FILE, KEY_ENV, KEY_FILE_ENV
from callpipe.recorder import Recorder
from callpipe.storage import RecordingNotFoundError, get_audio_storage

DEFAULTS = {
    "STORAGE_BACKEND": "local",
    "STORAGE_LOCAL_PATH": "./data/recordings",
}


def apply_defaults() -> None:
    """Fill unset configuration with the embedded defaults (local store under ./data/recordings,
    PII key file ./data/pii.key as an absolute path, unless a key is configured)."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not os.environ.get(KEY_ENV) and not os.environ.get(KEY_FILE_ENV):
        os.environ[KEY_FILE_ENV] = str(Path(DEMO_KEY_FILE).resolve())


def record_demo_calls() -> list[dict[str, Any]]:
    """Record each bundled demo call once (dated yesterday); calls already in the store are kept."""
    store = get_audio_storage()
    recorder = Recorder(store)
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    rows = []
    for index, call in enumerate(load_demo_calls()):
        recording_id = f"demo-{call.call_id}"
        try:
            existing = store.get_metadata(recording_id)
            rows.append(
                {"recording_id": recording_id, "status": "already recorded", "processed": existing.processed}
            )
            continue
        except RecordingNotFoundError:
            pass
        live = call.demo_live or {"text": call.live_text, "word_confidences": call.live_word_confidences}
        result = recorder.record_sync(
            call.audio,
            call.conversation_id,
            transcription=live["text"],
            word_confidences=live["word_confidences"],
            direction=call.direction,
            timestamp=day + timedelta(minutes=7 * index),
            audio_format="flac",
            extra={
                "agent_id": call.agent_id,
                "demo_call": call.call_id,
                "reference_text": call.reference_text,
            },
            recording_id=recording_id,
        )
        rows.append(
            {
                "recording_id": result.save.recording_id,
                "status": "recorded",
                "online_corrections": len(result.online["corrections_made"]),
                "needs_clarification": result.online["needs_clarification"],
                "online_ms": round(result.online["processing_time_ms"], 3),
            }
        )
    return rows


def run_demo() -> dict[str, Any]:
    """Online stage for every demo call, then the offline Dagster graph over their call date."""
    from callpipe.batch import ensure_dagster_home, run_partitions
    from callpipe.defs.partitions import partition_key_for

    apply_defaults()
    home = ensure_dagster_home()
    rows = record_demo_calls()
    store = get_audio_storage()
    days = sorted({partition_key_for(store.get_metadata(r["recording_id"]).timestamp) for r in rows})
    load_demo_categories(apply=False)  # stored first: the day write applies them to the new calls
    offline = run_partitions(dict.fromkeys(days), trigger="demo")
    categories = load_demo_categories(apply=True)  # and to calls a previous demo run stored
    from callpipe.analytics import default_root, open_analytics_store

    tables = open_analytics_store(read_only=True)
    try:
        calls = [{**row, **_call_summary(tables.get_call(row["recording_id"]))} for row in rows]
    finally:
        tables.close()
    return {
        "store": os.environ["STORAGE_LOCAL_PATH"],
        "analytics": os.environ.get("CALLPIPE_ANALYTICS_DB") or str(default_root()),
        "dagster_home": str(home),
        "calls": calls,
        "categories": categories,
        "offline": {k: v for k, v in offline.items() if k != "runs"} | {"runs": offline["runs"]},
        "stats": store.get_storage_stats(),
        "next": [
            "callpipe show RECORDING_ID   # a call's full metadata, e.g. callpipe show demo-saldo",
            "data/analytics/{calls,turns,entities}/call_date=*/part.parquet   # the analytics tables:"
            " query them with DuckDB or any Parquet reader (README, 'Analytics tables')",
            ".venv/bin/callpipe serve --demo   # the analyst web UI and HTTP API on these calls",
            f"DAGSTER_HOME={home} .venv/bin/dagster dev   # from the repo root, then open http://127.0.0.1:3000",
        ],
    }


def load_demo_categories(*, apply: bool) -> dict[str, list[str]]:
    """Store the demo categories (``callpipe/data/categories_demo.yaml``) in the analytics tables
    and, with ``apply``, apply each to every stored call; the calls each matches."""
    from callpipe.analytics import open_analytics_store
    from callpipe.analytics.categorize import load_categories
    from callpipe.categories import load_rules

    rules = load_rules(Path(str(resources.files("callpipe") / "data" / "categories_demo.yaml")))
    tables = open_analytics_store(store=get_audio_storage())  # where the day's asset writes them
    try:
        load_categories(tables, rules, apply=apply)
        return {r.name: sorted(c["recording_id"] for c in tables.list_calls(category=r.name, limit=1000)[0])
                for r in rules}
    finally:
        tables.close()


def _call_summary(row: dict[str, Any] | None) -> dict[str, Any]:
    """What the demo prints of a call, from its row of the ``calls`` table."""
    if row is None:
        return {"in_analytics_table": False}
    entities = {k.removeprefix("entities_"): v for k, v in row.items() if k.startswith("entities_") and v}
    return {
        "status": row["status"],
        "online_corrections": row["online_corrections"],
        "offline_corrections": row["offline_corrections"],
        "retranscribed": row["retranscribed"],
        "live_wer": row["live_wer_measured"],
        "final_wer": row["offline_wer_measured"],
        "sentiment": row["sentiment_label"],
        "intent": row["primary_intent"],
        "entities": entities,
        "topics": row["topics"],
        "error": row["error"],
    }
