"""``GET /recordings?outcome=``: the call list filtered by how the call ended (real local tables)."""

from __future__ import annotations

import random

from fastapi.testclient import TestClient

from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import generated_call
from callpipe.schema import Outcome
from callpipe.storage import LocalStore
from callpipe_tests.service.conftest import KEYS, auth
from callpipe_tests.storage.conftest import make_wav

DAY = "2026-11-21"
CYCLE = [Outcome.RESOLVED, Outcome.ESCALATED, Outcome.ABANDONED, Outcome.TRANSFERRED, Outcome.RESOLVED]


def test_outcome_filter(client: TestClient, local_store: LocalStore, analytics_url: str) -> None:
    rng = random.Random(3)
    want: dict[str, list[str]] = {}
    docs = []
    for index, outcome in enumerate(CYCLE):
        doc = generated_call(index, DAY, rng, "processed")
        doc.outcome = outcome
        local_store.save_recording(make_wav(seconds=1.0, seed=index), doc.conversation_id, doc, "wav")
        docs.append(local_store.get_metadata(doc.recording_id))
        want.setdefault(outcome.value, []).append(doc.recording_id)
    writer = open_analytics_store(analytics_url)
    try:
        writer.replace_day(DAY, *rows_for_day(docs))
    finally:
        writer.close()
    headers = auth("analyst")
    for outcome, ids in want.items():
        items = client.get(f"/recordings?outcome={outcome}", headers=headers).json()["items"]
        assert sorted(r["recording_id"] for r in items) == sorted(ids)
        assert {r["outcome"] for r in items} == {outcome}
    assert client.get("/recordings?outcome=unknown", headers=headers).json()["items"] == []
    assert client.get("/recordings?outcome=" + "x" * 30, headers=headers).status_code == 422
    # The call page shows it.
    assert client.post("/ui/login", data={"key": KEYS["analyst"]}, follow_redirects=False).status_code == 303
    page = client.get(f"/ui/calls/{want['escalated'][0]}")
    assert page.status_code == 200
    assert '<span class="chip outcome" id="outcome">escalated</span>' in page.text
