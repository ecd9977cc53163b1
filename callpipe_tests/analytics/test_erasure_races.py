"""An erasure interleaved with a day's table write, on both backends, never leaves the call behind.

The day run is a real separate process doing what the ``call_analytics`` asset does (read the
day's documents from the recording store, build the rows, ``replace_day``), parked at a named
point (:mod:`callpipe.faultpoints`) while the real ``DELETE /recordings/{id}`` runs; afterwards
the erased id is in no table file, no listing or search row, no dashboard count, and the receipt's
``complete`` says so.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import psycopg2
import pytest
from fastapi.testclient import TestClient

from callpipe.analytics import TABLES, open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import generated_call
from callpipe.faultpoints import PARK_ENV, READY_ENV, RESUME_ENV
from callpipe.storage import LocalStore
from callpipe_tests.service.conftest import auth, client_for, make_settings
from callpipe_tests.storage.conftest import make_wav

DAY, NEXT_DAY = "2026-11-20", "2026-11-21"
CALLS = 6
DAY_RUN = """
import sys
from datetime import UTC, datetime, timedelta
from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.storage import LocalStore
from callpipe.summary import day_documents
store, url, day = LocalStore(sys.argv[1]), sys.argv[2], sys.argv[3]
start = datetime.fromisoformat(day).replace(tzinfo=UTC)
docs, _ = day_documents(store, start, start + timedelta(days=1))
writer = open_analytics_store(url)
writer.replace_day(day, *rows_for_day(docs))
writer.close()
print(len(docs))
"""
WRITE_POINT = {"duckdb": "tables:files-written", "postgres": "tables:rows-written"}


@pytest.fixture(params=["duckdb", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return str(tmp_path / "analytics") if backend == "duckdb" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "recordings")


@pytest.fixture
def client(tmp_path: Path, store: LocalStore, url: str) -> Iterator[TestClient]:
    with client_for(make_settings(tmp_path), store, url) as c:
        yield c


def _fill(store: LocalStore, url: str) -> list[str]:
    """``CALLS`` processed calls of ``DAY`` saved in the store and written to the tables."""
    rng = random.Random(5)
    ids = []
    for index in range(CALLS):
        doc = generated_call(index, DAY, rng)
        store.save_recording(
            make_wav(seconds=0.5, seed=index), doc.conversation_id, doc, "wav", doc.recording_id
        )
        ids.append(doc.recording_id)
    writer = open_analytics_store(url)
    try:
        writer.replace_day(DAY, *rows_for_day([store.get_metadata(r) for r in ids]))
    finally:
        writer.close()
    return ids


def _search_word(url: str, rid: str) -> str:
    """A word of the call's transcript that the search finds it by (before its erasure)."""
    reader = open_analytics_store(url)
    try:
        word = max(str(reader.get_call(rid)["search_text"]).split(), key=len)  # type: ignore[index]
        found, _ = reader.list_calls(q=word, limit=1000)
        assert rid in {r["recording_id"] for r in found}
        return word
    finally:
        reader.close()


def _stored_ids(url: str) -> dict[str, set[str]]:
    """The recording ids in every table as stored (Parquet files, SQLite listing, or PostgreSQL)."""
    out: dict[str, set[str]] = {}
    if url.startswith("postgresql"):
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                for table in TABLES:
                    cur.execute(f"SELECT recording_id FROM {table}")
                    out[table] = {r[0] for r in cur.fetchall()}
        finally:
            conn.close()
        return out
    root = Path(url)
    for table in TABLES:
        files = sorted(str(p) for p in (root / table).glob("call_date=*/*.parquet"))
        out[table] = (
            {r[0] for r in duckdb.sql(f"SELECT recording_id FROM read_parquet({files})").fetchall()}
            if files
            else set()
        )
    db = sqlite3.connect(root / "listing.sqlite")
    try:
        out["listing"] = {r[0] for r in db.execute("SELECT recording_id FROM calls")}
        (fts_rows,) = db.execute("SELECT count(*) FROM calls_fts").fetchone()
        assert fts_rows == len(out["listing"]), "search rows left without their listing row"
    finally:
        db.close()
    return out


def _assert_gone(url: str, victim: str, word: str, kept: set[str]) -> None:
    """``victim`` is in no table, search result or count; exactly ``kept`` are."""
    for table, ids in _stored_ids(url).items():
        assert victim not in ids, f"erased call back in {table}"
        assert ids == kept, table
    reader = open_analytics_store(url)
    try:
        assert reader.get_call(victim) is None and reader.call_turns(victim) == []
        assert reader.call_entities(victim) == [] and not reader.has_rows(victim)
        found, _ = reader.list_calls(q=word, limit=1000)
        assert victim not in {r["recording_id"] for r in found}
        listed, _ = reader.list_calls(limit=1000)
        assert {r["recording_id"] for r in listed} == kept
        per_day = reader.dashboard()["per_day"]
        assert sum(d["calls"] for d in per_day) == len(kept)
        assert reader.day_summary(DAY)["recordings"] == len(kept)
    finally:
        reader.close()


class ParkedDayRun:
    """``DAY_RUN`` in its own process, parked at ``point`` until :meth:`resume`."""

    def __init__(self, tmp_path: Path, store: LocalStore, url: str, point: str) -> None:
        self.ready, self.go = tmp_path / "parked", tmp_path / "resume"
        env = {**os.environ, PARK_ENV: point, READY_ENV: str(self.ready), RESUME_ENV: str(self.go)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DAY_RUN, str(store.root), url, DAY],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"day run never reached {point}: {self.proc.communicate()[1][-2000:]}")
            time.sleep(0.05)

    def resume(self) -> int:
        """Let the run go on; the number of documents it had read."""
        self.go.touch()
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err[-2000:]
        return int(out.split()[-1])


def _delete(client: TestClient, rid: str) -> dict[str, object]:
    response = client.delete(f"/recordings/{rid}", headers=auth("admin"))
    body: dict[str, object] = response.json()
    assert response.status_code == (200 if body["complete"] else 502)
    return body


@pytest.mark.parametrize("reprocess", [False, True], ids=["day-run", "reprocess"])
def test_erasure_after_a_day_run_read_the_documents(
    tmp_path: Path, store: LocalStore, url: str, client: TestClient, reprocess: bool
) -> None:
    ids = _fill(store, url)
    victim = ids[2]
    word = _search_word(url, victim)
    if reprocess:  # the victim's stages are to be redone: its day is written again
        store.request_reprocess(victim)
    run = ParkedDayRun(tmp_path, store, url, "tables:documents-read")  # read it, nothing written
    body = _delete(client, victim)
    assert body["complete"] is True and body["analytics"] == {"rows_removed": True, "rows_remain": False}
    assert run.resume() == CALLS  # the run held the erased call's document
    _assert_gone(url, victim, word, set(ids) - {victim})


@pytest.mark.parametrize("reprocess", [False, True], ids=["day-run", "reprocess"])
def test_erasure_while_a_day_run_writes(
    tmp_path: Path, store: LocalStore, url: str, backend: str, client: TestClient, reprocess: bool
) -> None:
    ids = _fill(store, url)
    victim = ids[4]
    word = _search_word(url, victim)
    if reprocess:
        store.request_reprocess(victim)
    run = ParkedDayRun(tmp_path, store, url, WRITE_POINT[backend])  # files/rows written, not committed
    answer: dict[str, dict[str, object]] = {}
    eraser = threading.Thread(target=lambda: answer.update(body=_delete(client, victim)))
    eraser.start()
    eraser.join(1.5)
    assert eraser.is_alive(), "the erasure did not wait for the write in flight"
    assert run.resume() == CALLS
    eraser.join(60)
    assert not eraser.is_alive()
    assert answer["body"]["complete"] is True
    _assert_gone(url, victim, word, set(ids) - {victim})


def _refuse_tombstones(url: str) -> None:
    """Make the backend itself refuse every new tombstone (a trigger): an erasure of the tables fails."""
    if url.startswith("postgresql"):
        conn = psycopg2.connect(url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$BEGIN RAISE EXCEPTION 'refused'; END$$"
                )
                cur.execute(
                    "CREATE TRIGGER refuse BEFORE INSERT ON erased_recordings"
                    " FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
        finally:
            conn.close()
        return
    db = sqlite3.connect(Path(url) / "listing.sqlite")
    try:
        with db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON erased BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
    finally:
        db.close()


def test_erasure_reports_incomplete_while_rows_remain(
    store: LocalStore, url: str, client: TestClient
) -> None:
    ids = _fill(store, url)
    victim = ids[0]
    _refuse_tombstones(url)
    body = _delete(client, victim)
    assert body["complete"] is False  # the audio and document are gone; the rows are not
    assert "rows remain" in str(body["analytics"])
    assert all(victim in stored for stored in _stored_ids(url).values())


def test_a_call_whose_date_moves_is_listed_once(url: str) -> None:
    """A new timezone files a call under the next day: it leaves its old day, nothing duplicated."""
    writer = open_analytics_store(url)
    try:
        docs = [generated_call(i, DAY, random.Random(i)) for i in range(4)]
        writer.replace_day(DAY, *rows_for_day(docs))
        moving = docs[1].recording_id
        calls, turns, entities = (
            [dict(r, call_date=date.fromisoformat(NEXT_DAY)) for r in rows if r["recording_id"] == moving]
            for rows in rows_for_day(docs)
        )
        writer.replace_day(NEXT_DAY, calls, turns, entities)
        listed, _ = writer.list_calls(limit=1000)
        assert [r["recording_id"] for r in listed].count(moving) == 1
        assert writer.get_call(moving)["call_date"] == date.fromisoformat(NEXT_DAY)  # type: ignore[index]
        assert len(writer.call_turns(moving)) == len(turns) > 0
        assert writer.day_summary(DAY)["recordings"] == 3 and writer.day_summary(NEXT_DAY)["recordings"] == 1
        stored = _stored_ids(url)
        assert all(len(ids) == 4 for table, ids in stored.items() if table != "entities")
        with pytest.raises(ValueError, match=r"repeat a key|duplicate|unique"):
            writer.replace_day(NEXT_DAY, calls + calls, turns, entities)
        assert writer.day_summary(NEXT_DAY)["recordings"] == 1  # the refused write changed nothing
    finally:
        writer.close()
