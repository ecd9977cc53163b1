"""The categories stage on the real analytics tables (embedded SQLite/Parquet and PostgreSQL):
a day write applies the stored rules, applying a rule covers history, edit and delete update
every call, erasure removes a call's matches."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from callpipe.analytics import AnalyticsStore, open_analytics_store, rows_for_day
from callpipe.analytics.categorize import apply_category
from callpipe.analytics.synthetic import generated_calls
from callpipe.categories import CategoryRule, match, parse_rule
from callpipe.pii import RedactionMode

DAYS = ("2026-03-01", "2026-03-02", "2026-03-03")
BAJA = parse_rule("name: baja\nspeaker: customer\nphrases: [darme de baja]\n")


def _fill(store: AnalyticsStore, day: str, count: int = 20) -> list:
    docs = generated_calls(day, count, failed_every=9)
    store.replace_day(day, *rows_for_day(docs, mode=RedactionMode.MASK))
    return docs


def _expected(rule: CategoryRule, docs: list) -> set[str]:
    return {d.recording_id for d in docs if d.processed and match(rule, d) is not None}


def _listed(store: AnalyticsStore, name: str) -> set[str]:
    items, _ = store.list_calls(category=name, limit=1000)
    return {r["recording_id"] for r in items}


def test_saving_a_category_applies_it_to_every_past_call(store: AnalyticsStore) -> None:
    docs = [d for day in DAYS for d in _fill(store, day)]
    expected = _expected(BAJA, docs)
    assert expected and len(expected) < len(docs)
    assert _listed(store, "baja") == set()  # defined after the calls were written
    store.put_category(BAJA)
    seen: list[tuple[int, int]] = []
    result = store_apply(store, seen)
    processed = sum(1 for d in docs if d.processed)
    assert result["state"] == "done" and result["covered"] == result["total"] == processed
    assert [t for _, t in seen] == [processed] * len(DAYS) and seen[-1][0] == processed
    assert _listed(store, "baja") == expected
    rid = sorted(expected)[0]
    [hit] = store.call_categories(rid)
    assert hit["category"] == "baja" and hit["version"] == BAJA.version
    assert hit["matched"] == ["darme", "de", "baja"]
    turns = store.call_turns(rid)
    assert "baja" in turns[hit["turn_index"]]["text"] and turns[hit["turn_index"]]["speaker"] == "customer"
    counts = store.category_counts(date(2026, 3, 1), date(2026, 3, 3))
    assert sum(c["calls"] for c in counts) == len(expected)
    assert {c["call_date"] for c in counts} <= set(DAYS)
    [stored] = store.categories("baja")
    assert stored["progress"]["state"] == "done" and stored["version"] == BAJA.version


def store_apply(store: AnalyticsStore, seen: list[tuple[int, int]]) -> dict:
    return apply_category(store, "baja", on_progress=lambda c, t: seen.append((c, t)))


def test_a_day_written_later_gets_the_stored_categories(store: AnalyticsStore) -> None:
    store.put_category(BAJA)
    docs = _fill(store, DAYS[0])
    assert _listed(store, "baja") == _expected(BAJA, docs) != set()


def test_edit_and_delete_update_every_call(store: AnalyticsStore) -> None:
    docs = [d for day in DAYS for d in _fill(store, day)]
    store.put_category(BAJA)
    apply_category(store, "baja")
    edited = parse_rule("phrases: [tarjeta]\nspeaker: customer\n", "baja")
    store.put_category(edited)
    apply_category(store, "baja")
    expected = _expected(edited, docs)
    assert expected and expected != _expected(BAJA, docs)
    assert _listed(store, "baja") == expected
    assert {h["version"] for rid in expected for h in store.call_categories(rid)} == {edited.version}
    assert store.delete_category("baja") is True
    assert _listed(store, "baja") == set() and store.categories() == []
    assert store.delete_category("baja") is False


def test_erasure_removes_the_call_matches(store: AnalyticsStore) -> None:
    store.put_category(BAJA)
    docs = _fill(store, DAYS[0])
    rid = sorted(_expected(BAJA, docs))[0]
    assert store.remove_recording(rid)
    assert store.call_categories(rid) == [] and not store.has_rows(rid)
    assert rid not in _listed(store, "baja")


def test_a_listing_from_before_categories_reads_as_no_category(tmp_path: Path) -> None:
    import sqlite3

    writer = open_analytics_store(str(tmp_path / "analytics"))
    _fill(writer, DAYS[0])
    writer.close()
    with sqlite3.connect(tmp_path / "analytics" / "listing.sqlite") as conn:  # as an older version left it
        for table in ("call_categories", "category_rules", "category_progress"):
            conn.execute(f"DROP TABLE {table}")
    reader = open_analytics_store(str(tmp_path / "analytics"), read_only=True)
    assert reader.categories() == [] and reader.category_counts() == []
    assert reader.call_categories("gen-2026-03-01-0000") == []
    reader.close()
    writer = open_analytics_store(str(tmp_path / "analytics"))  # the next writer adds the tables
    writer.put_category(BAJA)
    assert [c["name"] for c in writer.categories()] == ["baja"]
    writer.close()


def test_silence_and_talk_conditions_read_from_the_tables(store: AnalyticsStore) -> None:
    docs = [d for day in DAYS for d in _fill(store, day)]
    silences = sorted(d.conversation_metrics.silence_seconds for d in docs if d.processed)
    cut = silences[len(silences) // 2]
    rule = parse_rule(f"phrases: [hoy, ahora, euros, algo]\nmin_silence_seconds: {cut}\n", "long_silence")
    store.put_category(rule)
    apply_category(store, "long_silence")
    expected = _expected(rule, docs)
    assert expected and len(expected) < len([d for d in docs if d.processed])
    assert _listed(store, "long_silence") == expected
    assert all(d.conversation_metrics.silence_seconds >= cut for d in docs if d.recording_id in expected)
    short = parse_rule("phrases: [hoy, ahora, euros, algo]\nmax_talk_seconds: 0.5\n", "short")
    store.put_category(short)
    apply_category(store, "short")
    assert _listed(store, "short") == set() == _expected(short, docs)


def test_postgres_from_before_categories_reads_as_no_category(pg_url: str) -> None:
    import psycopg2

    writer = open_analytics_store(pg_url)
    _fill(writer, DAYS[0])
    writer.close()
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:  # as an older version left it
        cur.execute("DROP TABLE call_categories, category_rules, category_progress")
    reader = open_analytics_store(pg_url, read_only=True)
    assert reader.categories() == [] and reader.category_counts() == []
    reader.close()
