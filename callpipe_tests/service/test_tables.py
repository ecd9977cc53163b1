"""The call list, dashboard and call page served from the real analytics tables (Parquet + DuckDB).

Calls are saved in a real local store as processed documents (generated analyses, real audio)
and their day's rows written with ``rows_for_day``, as the table assets (``calls``, ``turns``,
``entities``) write them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient

from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import generated_call
from callpipe.schema import Correction, Outcome
from callpipe.storage import LocalStore
from callpipe_tests.service.conftest import KEYS, auth
from callpipe_tests.storage.conftest import make_wav

DAY = "2026-11-20"


def fill(store: LocalStore, analytics_url: str, count: int = 12, outcomes: Sequence[str] = ()) -> list[str]:
    """``count`` processed calls (one failed) on ``DAY`` in the store and in the tables; call
    ``i`` ends ``outcomes[i % len(outcomes)]`` when outcomes are given."""
    rng = random.Random(7)
    ids = []
    for index in range(count):
        doc = generated_call(index, DAY, rng, "failed" if index == count - 1 else "processed")
        if outcomes:
            doc.outcome = Outcome(outcomes[index % len(outcomes)])
        if index == 0:  # the live transcript kept: the page shows it, with its live fix
            doc.transcription.retranscribed = False
            doc.online_transcription.corrections_made = [
                Correction(
                    original="fractura", corrected="factura", method="fast_exact", position=3, confidence=0.9
                )
            ]
        if index == 1:  # processed without speaker turns (the live transcript was kept)
            doc.turns = []
            doc.sentiment.per_turn = []
        if index == 2:  # a mono call diarized by voice
            doc.turns = [
                t.model_copy(update={"speaker_confidence": 0.93, "channel": None}) for t in doc.turns
            ]
        store.save_recording(
            make_wav(seconds=1.0, seed=index), doc.conversation_id, doc, "wav", doc.recording_id
        )
        ids.append(doc.recording_id)
    docs = [store.get_metadata(rid) for rid in ids]
    writer = open_analytics_store(analytics_url)
    try:
        writer.replace_day(DAY, *rows_for_day(docs))
    finally:
        writer.close()
    return ids


@pytest.fixture
def filled(local_store: LocalStore, analytics_url: str) -> list[str]:
    return fill(local_store, analytics_url)


def test_list_filters_search_and_pages(client: TestClient, filled: list[str]) -> None:
    headers = auth("analyst")
    everything = client.get("/recordings?limit=500", headers=headers).json()
    assert len(everything["items"]) == 12 and everything["next_cursor"] is None
    rows = {r["recording_id"]: r for r in everything["items"]}
    intent = rows[filled[0]]["primary_intent"]
    want = sorted(
        r for r, row in rows.items() if row["primary_intent"] == intent and row["status"] == "processed"
    )
    got = client.get(f"/recordings?intent={intent}&status=processed", headers=headers).json()["items"]
    assert sorted(r["recording_id"] for r in got) == want
    # q: every word in the redacted transcript, accents and case ignored.
    word_rows = client.get("/recordings?q=SALDO&limit=500", headers=headers).json()["items"]
    assert word_rows and all(r["primary_intent"] == "balance_inquiry" for r in word_rows)
    # Pages: newest first, no repeats, no gaps.
    seen, cursor = [], None
    while True:
        url = "/recordings?limit=5" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=headers).json()
        seen += [r["recording_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["recording_id"] for r in everything["items"]] and len(set(seen)) == 12
    assert client.get("/recordings?date_from=2026-11-21", headers=headers).json()["items"] == []
    bad = client.get("/recordings?cursor=nonsense", headers=headers)
    assert bad.status_code == 422 and isinstance(bad.json()["detail"], str)
    assert client.get("/recordings?date_from=yesterday", headers=headers).status_code == 422


def test_stats_count_failed_calls_from_the_table(client: TestClient, filled: list[str]) -> None:
    queue = client.get("/processing/stats", headers=auth("analyst")).json()["processing_queue"]
    assert queue == {
        "total_recordings": 12,
        "processed": 11,
        "pending": 0,
        "failed": 1,
        "processing_rate": round(11 / 12, 4),
    }


def test_erasure_removes_the_call_from_the_tables(client: TestClient, filled: list[str]) -> None:
    gone = filled[3]
    response = client.delete(f"/recordings/{gone}", headers=auth("admin"))
    assert response.status_code == 200
    assert response.json()["analytics"] == {"rows_removed": True, "rows_remain": False}
    assert response.json()["complete"] is True
    items = client.get("/recordings?limit=500", headers=auth("analyst")).json()["items"]
    assert len(items) == 11 and gone not in {r["recording_id"] for r in items}


def _login(client: TestClient) -> None:
    assert client.post("/ui/login", data={"key": KEYS["analyst"]}, follow_redirects=False).status_code == 303


def test_ui_pages_need_a_session(client: TestClient, filled: list[str]) -> None:
    for path in ("/ui", "/ui/calls", f"/ui/calls/{filled[0]}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui"


def test_dashboard_list_and_call_page(client: TestClient, filled: list[str]) -> None:
    _login(client)
    dashboard = client.get("/ui")
    assert dashboard.status_code == 200
    assert 'src="/vendor/plotly.min.js"' in dashboard.text and 'id="dash-data"' in dashboard.text
    assert "content-security-policy" in dashboard.headers
    plotly = client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert (
        client.get("/static/app.css").status_code == 200 and client.get("/static/app.js").status_code == 200
    )
    listing = client.get("/ui/calls?intent=balance_inquiry")
    assert listing.status_code == 200
    linked = set(re.findall(r'href="/ui/calls/(gen-[^"]+)"', listing.text))
    api = client.get("/recordings?intent=balance_inquiry&limit=500", headers=auth("analyst")).json()["items"]
    assert linked == {r["recording_id"] for r in api}
    page = client.get(f"/ui/calls/{filled[0]}")
    assert page.status_code == 200
    text = page.text
    assert f'src="/recordings/{filled[0]}/audio"' in text
    assert text.count('class="turn agent"') >= 2 and 'class="turn customer"' in text
    assert '<mark class="fix" title="live: fractura">factura</mark>' in text
    entities = text.split('id="entities"')[1].split("</table>")[0]
    assert entities.count('<mark class="ent">') == 2 and "example.com" in entities
    assert "juan@example.com" not in text
    assert 'href="http://127.0.0.1:3000/runs/generated"' in text
    assert "<script>" not in text  # no inline scripts: the CSP allows only the app's own files
    no_turns = client.get(f"/ui/calls/{filled[1]}").text
    assert 'id="whole-transcript"' in no_turns and 'class="turn agent"' not in no_turns
    mono = client.get(f"/ui/calls/{filled[2]}").text
    assert 'id="speakers">diarized by voice (mono)' in mono and "voice 0.93" in mono
    assert "voice 0.93" not in text  # turns without a diarization confidence show none
    missing = client.get("/ui/calls/not-a-call")
    assert missing.status_code == 200 and "No call not-a-call" in missing.text


def test_html_is_escaped_in_highlighted_turns() -> None:
    from callpipe.service.ui import highlight

    out = str(
        highlight(
            "<b>saldo</b> [IBAN] 500.00",
            [{"original": "salgo", "corrected": "saldo", "method": "exact"}],
            [{"value_masked": "500.00", "kind": "amount"}],
        )
    )
    assert out.startswith('&lt;b&gt;<mark class="fix" title="live: salgo">saldo</mark>&lt;/b&gt;')
    assert '<mark class="ent" title="iban">[IBAN]</mark>' in out
    assert '<mark class="ent" title="amount">500.00</mark>' in out


def test_a_call_not_in_the_tables_yet_has_a_page(client: TestClient, local_store: LocalStore) -> None:
    """A pending call (stored, no analytics row, no table written at all) shows what is known."""
    rng = random.Random(3)
    doc = generated_call(0, DAY, rng, "pending")
    local_store.save_recording(
        make_wav(seconds=1.0, seed=1), doc.conversation_id, doc, "wav", doc.recording_id
    )
    _login(client)
    page = client.get(f"/ui/calls/{doc.recording_id}")
    assert page.status_code == 200
    assert f'src="/recordings/{doc.recording_id}/audio"' in page.text and "st-pending" in page.text
