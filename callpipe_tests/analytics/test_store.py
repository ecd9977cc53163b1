"""The analytics tables on both backends: idempotent day writes, filters, cursor, search, readers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from callpipe.analytics import (
    AnalyticsConfigError,
    AnalyticsQueryError,
    AnalyticsStore,
    normalize_text,
    open_analytics_store,
    rows_for_day,
)
from callpipe.analytics.duck import ParquetAnalyticsStore
from callpipe.analytics.synthetic import generated_calls
from callpipe.pii import RedactionMode
from callpipe.schema import Outcome

DAY1, DAY2 = "2026-03-01", "2026-03-02"


def _fill(store: AnalyticsStore, day: str, count: int, **kw: int) -> None:
    store.replace_day(day, *rows_for_day(generated_calls(day, count, **kw), mode=RedactionMode.MASK))


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalyticsStore]:
    url = str(tmp_path / "analytics") if request.param == "duckdb" else request.getfixturevalue("pg_url")
    opened = open_analytics_store(url)
    yield opened
    opened.close()


def test_replacing_a_day_never_duplicates(store: AnalyticsStore) -> None:
    _fill(store, DAY1, 30, failed_every=10, pending_every=7)
    _fill(store, DAY2, 5)
    _fill(store, DAY1, 30, failed_every=10, pending_every=7)  # re-run of the same day
    summary = store.day_summary(DAY1)
    assert summary["recordings"] == 30
    assert (summary["processed"], summary["failed"], summary["pending"]) == (23, 3, 4)
    assert store.day_summary(DAY2)["recordings"] == 5
    _fill(store, DAY1, 12)  # the day now holds fewer calls: the old rows are gone
    assert store.day_summary(DAY1)["recordings"] == 12
    page, _ = store.list_calls(date_from=date(2026, 3, 1), date_to=date(2026, 3, 1), limit=1000)
    assert len(page) == len({r["recording_id"] for r in page}) == 12


def test_cursor_walks_every_call_once_newest_first(store: AnalyticsStore) -> None:
    _fill(store, DAY1, 23)
    _fill(store, DAY2, 17)
    seen, cursor = [], None
    while True:
        rows, cursor = store.list_calls(limit=7, cursor=cursor)
        seen += rows
        if cursor is None:
            break
    assert len(seen) == 40 and len({r["recording_id"] for r in seen}) == 40
    keys = [(r["call_start_utc"], r["recording_id"]) for r in seen]
    assert keys == sorted(keys, reverse=True)
    assert "redacted_text" not in seen[0] and "search_text" not in seen[0]
    with pytest.raises(AnalyticsQueryError, match="invalid cursor"):
        store.list_calls(cursor="not-a-cursor")


def test_filters_and_search(store: AnalyticsStore) -> None:
    _fill(store, DAY1, 40, failed_every=8)
    _fill(store, DAY2, 40)
    everything, _ = store.list_calls(limit=1000)
    failed, _ = store.list_calls(status="failed", limit=1000)
    assert {r["recording_id"] for r in failed} == {
        r["recording_id"] for r in everything if r["status"] == "failed"
    }
    assert len(failed) == 5
    rows, _ = store.list_calls(
        intent="cancellation", sentiment="negative", date_from=date(2026, 3, 2), limit=1000
    )
    expected = [
        r
        for r in everything
        if r["primary_intent"] == "cancellation"
        and r["sentiment_label"] == "negative"
        and r["call_date"] >= date(2026, 3, 2)
    ]
    assert rows and [r["recording_id"] for r in rows] == [r["recording_id"] for r in expected]
    # search: case and accents ignored, every word must appear, over the redacted transcript
    portab, _ = store.list_calls(q="PORTABILIDAD", limit=1000)
    cancellations = [
        r for r in everything if r["primary_intent"] == "cancellation" and r["status"] == "processed"
    ]
    assert {r["recording_id"] for r in portab} >= {r["recording_id"] for r in cancellations}
    accents, _ = store.list_calls(q="electronico  Correo", limit=1000)
    assert accents and all(
        r["primary_intent"] == "account_update" for r in accents if r["status"] == "processed"
    )
    assert store.list_calls(q="portabilidad xyzzy")[0] == []
    agent, _ = store.list_calls(agent_id="agent-003", limit=1000)
    assert agent and {r["agent_id"] for r in agent} == {"agent-003"}
    with pytest.raises(AnalyticsQueryError, match="status"):
        store.list_calls(status="done")


def test_call_detail_turns_entities_and_dashboard(store: AnalyticsStore) -> None:
    _fill(store, DAY1, 10, failed_every=5)
    call = store.get_call(f"gen-{DAY1}-000000")
    assert call is not None and call["status"] == "processed" and call["redacted_text"]
    assert isinstance(call["stage_versions"], dict) and isinstance(call["topics"], list)
    assert store.get_call("missing") is None
    turns = store.call_turns(call["recording_id"])
    assert [t["turn_index"] for t in turns] == list(range(len(turns))) and turns[0]["speaker"] == "agent"
    assert (
        turns[0]["start"] == turns[0]["start_seconds"]
        and turns[0]["sentiment_label"] == call["sentiment_label"]
    )
    entities = store.call_entities(call["recording_id"])
    assert {e["kind"] for e in entities} == {"amount", "email"}
    assert all("juan@" not in e["value_masked"] for e in entities)  # personal values masked
    board = store.dashboard(date(2026, 3, 1), date(2026, 3, 1))
    day = board["per_day"][0]
    assert (day["calls"], day["processed"], day["failed"], day["pending"]) == (10, 8, 2, 0)
    assert sum(r["calls"] for r in board["sentiment_by_day"]) == 8
    assert sum(r["calls"] for r in board["intent_by_day"]) == 8
    assert board["top_topics"] and board["slowest"][0]["seconds"] >= board["slowest"][-1]["seconds"]
    summary = store.day_summary(DAY1)
    assert summary["failures"] and summary["failures"][0]["error"].startswith("stt:")
    assert store.dashboard(date(2030, 1, 1))["per_day"] == []


def test_a_reader_keeps_working_while_a_writer_replaces_days(tmp_path: Path) -> None:
    root = tmp_path / "analytics"
    writer = open_analytics_store(str(root))
    _fill(writer, DAY1, 50)
    reader = open_analytics_store(str(root), read_only=True)
    shell = duckdb.connect()  # a BI tool reading the files directly
    glob = str(root / "calls" / "*" / "*.parquet")
    sizes = [50, 20]
    errors: list[BaseException] = []
    seen: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                seen.add(len(reader.list_calls(limit=1000)[0]))
                seen.add(shell.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(6):
            _fill(writer, DAY1, sizes[n % 2])
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert seen <= {20, 50}  # a whole day, old or new, never a mix or nothing
    assert len(reader.list_calls(limit=1000)[0]) == 20  # the reader sees the last write
    assert not list(root.rglob("*.tmp"))


def test_read_only_store_refuses_writes_and_bad_urls_are_clear(tmp_path: Path) -> None:
    reader = ParquetAnalyticsStore(tmp_path / "nothing", read_only=True)
    assert reader.list_calls() == ([], None)
    with pytest.raises(PermissionError):
        reader.replace_day(DAY1, [], [], [])
    with pytest.raises(AnalyticsConfigError, match="unsupported scheme 'mysql'"):
        open_analytics_store("mysql://x")


def test_default_location_is_beside_the_recording_store(tmp_path: Path) -> None:
    store = open_analytics_store(environ={"STORAGE_LOCAL_PATH": str(tmp_path / "data" / "recordings")})
    _fill(store, DAY1, 2)
    assert (tmp_path / "data" / "analytics" / "calls" / f"call_date={DAY1}" / "part.parquet").is_file()


def test_rows_follow_the_pii_policy() -> None:
    [doc] = generated_calls(DAY1, 1)
    doc.transcription.corrected_text = "mi correo es juan@example.com, gracias"
    doc.transcription.redacted_text = None
    doc.turns[1].text = "mi correo es juan@example.com"
    calls, turns, entities = rows_for_day([doc], mode=RedactionMode.MASK)
    assert "juan@example.com" not in calls[0]["redacted_text"] and "[EMAIL]" in calls[0]["redacted_text"]
    assert "juan@example.com" not in turns[1]["text"]
    assert set(calls[0]["search_text"].split()) == set(normalize_text(calls[0]["redacted_text"]).split())
    assert all(e["value_masked"] != "juan@example.com" for e in entities)
    raw, _, _ = rows_for_day([doc], mode=RedactionMode.OFF)
    assert "juan@example.com" in raw[0]["redacted_text"]
    assert normalize_text("¿Portabilidad  ÑANDÚ?") == "portabilidad nandu"


def test_call_date_follows_the_timezone(tmp_path: Path) -> None:
    [doc] = generated_calls(DAY1, 1)
    doc.timestamp = doc.timestamp.replace(hour=23, minute=30)
    calls, _, _ = rows_for_day([doc], timezone="Europe/Madrid", mode=RedactionMode.MASK)
    assert calls[0]["call_date"] == DAY2
    with pytest.raises(ValueError, match="given to replace_day"):
        ParquetAnalyticsStore(tmp_path).replace_day(DAY1, calls, [], [])


def test_erasing_a_recording_removes_its_rows_everywhere(store: AnalyticsStore) -> None:
    _fill(store, DAY1, 6)
    gone = f"gen-{DAY1}-000002"
    assert store.call_turns(gone) and store.call_entities(gone)
    assert store.remove_recording(gone) is True
    assert store.get_call(gone) is None and store.call_turns(gone) == [] and store.call_entities(gone) == []
    assert store.day_summary(DAY1)["recordings"] == 5
    assert store.remove_recording(gone) is False


_OUTCOME_CALLS = [  # (day, intent, agent, outcome) of each call
    (DAY1, "balance_inquiry", "agent-a", "resolved"),
    (DAY1, "balance_inquiry", "agent-a", "resolved"),
    (DAY1, "balance_inquiry", "agent-b", "escalated"),
    (DAY1, "balance_inquiry", "agent-b", "unknown"),
    (DAY1, "cancellation", "agent-a", "transferred"),
    (DAY1, "cancellation", "agent-a", "abandoned"),
    (DAY1, "cancellation", "agent-b", "resolved"),
    (DAY1, "card_issue", "agent-b", "unknown"),
    (DAY2, "cancellation", "agent-a", "resolved"),
]


def _fill_outcomes(store: AnalyticsStore) -> None:
    for day in (DAY1, DAY2):
        mine = [c for c in _OUTCOME_CALLS if c[0] == day]
        docs = generated_calls(day, len(mine))
        for doc, (_, intent, agent, outcome) in zip(docs, mine, strict=True):
            assert doc.intent is not None
            doc.intent.primary_intent = intent
            doc.extra["agent_id"] = agent
            doc.outcome = Outcome(outcome)
        store.replace_day(day, *rows_for_day(docs, mode=RedactionMode.MASK))


def test_dashboard_gives_outcomes_and_resolution_rates(store: AnalyticsStore) -> None:
    _fill_outcomes(store)
    board = store.dashboard(date(2026, 3, 1), date(2026, 3, 2))
    assert {r["outcome"]: r["calls"] for r in board["outcomes"]} == {
        "resolved": 4,
        "escalated": 1,
        "abandoned": 1,
        "transferred": 1,
        "unknown": 2,
    }
    assert board["resolution"] == {"known_outcome": 7, "resolved": 4, "resolution_rate": round(4 / 7, 4)}
    by_intent = {r["intent"]: r for r in board["resolution_by_intent"]}
    assert (by_intent["balance_inquiry"]["calls"], by_intent["balance_inquiry"]["known_outcome"]) == (4, 3)
    assert by_intent["balance_inquiry"]["resolution_rate"] == round(2 / 3, 4)
    assert by_intent["cancellation"]["resolution_rate"] == 0.5  # 2 of 4, over both days
    assert (
        by_intent["card_issue"]["known_outcome"] == 0 and by_intent["card_issue"]["resolution_rate"] is None
    )
    by_agent = {r["agent_id"]: r for r in board["by_agent"]}
    assert (by_agent["agent-a"]["known_outcome"], by_agent["agent-a"]["resolved"]) == (5, 3)
    assert by_agent["agent-a"]["resolution_rate"] == 0.6
    assert by_agent["agent-b"]["resolution_rate"] == 0.5  # the unknown ones do not count
    day1 = store.dashboard(date(2026, 3, 1), date(2026, 3, 1))
    assert {r["intent"]: r["resolution_rate"] for r in day1["resolution_by_intent"]}["cancellation"] == round(
        1 / 3, 4
    )
    # The counts are the calls the outcome filter lists.
    for row in board["outcomes"]:
        listed, _ = store.list_calls(outcome=row["outcome"], limit=1000)
        assert len(listed) == row["calls"], row
    assert store.dashboard(date(2030, 1, 1))["resolution"]["resolution_rate"] is None


def test_postgres_search_reads_a_stored_tsvector_and_older_tables_gain_it(pg_url: str) -> None:
    import psycopg2

    opened = open_analytics_store(pg_url)
    try:
        _fill(opened, DAY1, 20)
    finally:
        opened.close()
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:  # as an older version left it
        cur.execute("ALTER TABLE calls DROP COLUMN search_tsv")
        cur.execute("DELETE FROM analytics_schema")  # an older version recorded no schema version
        cur.execute(
            "CREATE INDEX calls_fts ON calls USING gin (to_tsvector('spanish', coalesce(search_text, '')))"
        )
    opened = open_analytics_store(pg_url)
    try:
        with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'calls'"
                " AND indexname IN ('calls_fts', 'calls_tsv')"
            )
            assert {name for (name,) in cur.fetchall()} == {"calls_tsv"}
            cur.execute(
                "SELECT count(*) FROM calls WHERE search_tsv @@ plainto_tsquery('spanish', 'portabilidad')"
            )
            stored = cur.fetchone()[0]
        found, _ = opened.list_calls(q="Portabilidad", limit=1000)
        assert found and len(found) == stored
        call = opened.get_call(found[0]["recording_id"])
        assert call is not None and "search_tsv" not in call and call["search_text"]
    finally:
        opened.close()
