"""``make demo`` stores the demo categories and applies them: over the demo calls' dialogues
written to real tables, some calls match each category and not every call matches."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import call_document
from callpipe.demo_command import load_demo_categories
from callpipe.pii import RedactionMode

DEMO = Path(__file__).resolve().parents[2] / "callpipe" / "data" / "demo_calls"


def test_demo_categories_match_some_demo_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPIPE_ANALYTICS_DB", str(tmp_path / "analytics"))
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "recordings"))
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    docs = []
    for index, path in enumerate(sorted(DEMO.glob("*.json"))):
        raw = json.loads(path.read_text(encoding="utf-8"))
        turns = [
            {"speaker": t["speaker"], "start": 6.0 * i, "end": 6.0 * i + 5.0, "text": t["text"]}
            for i, t in enumerate(raw["turns"])
        ]
        docs.append(
            call_document(
                recording_id=f"demo-{raw['call_id']}",
                conversation_id=raw["conversation_id"],
                timestamp=start + timedelta(minutes=7 * index),
                index=index,
                turns=turns,
                duration=6.0 * len(turns),
                rng=random.Random(index),
            )
        )
    tables = open_analytics_store(str(tmp_path / "analytics"))
    tables.replace_day("2026-03-01", *rows_for_day(docs, mode=RedactionMode.MASK))
    tables.close()
    matched = load_demo_categories(apply=True)
    assert set(matched) == {"baja_contrato", "cortesia_agente"}
    assert matched["baja_contrato"] == ["demo-baja"]
    every = {rid for ids in matched.values() for rid in ids}
    assert matched["cortesia_agente"] and 1 <= len(every) < len(docs)
