"""``callpipe erase``: after erasing, nothing of the call is left on disk nor in the bucket (a real
moto S3 server), other recordings are untouched, and an S3 outage leaves a resumable erasure that
``sync`` never undoes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from callpipe import cli
from callpipe.erasure import ErasureReceipt, erase, resume_erasures
from callpipe.pii import caller_info
from callpipe.storage import (
    FAST,
    LocalStore,
    MirroredStore,
    RecordingNotFoundError,
    RecordingStore,
    S3Store,
    make_s3_client,
)
from callpipe.storage import index as store_index
from callpipe.storage.mirrored import store_sides
from callpipe.storage.purge import Tombstone, purge_recording, write_tombstone
from callpipe_tests.storage import conftest as storage_fixtures
from callpipe_tests.storage.conftest import RestartableS3, make_wav

# The storage package's fixtures (a temp directory, a bucket on the session's moto server, both).
bucket = storage_fixtures.bucket
s3_client = storage_fixtures.s3_client
local_store = storage_fixtures.local_store
s3_store = storage_fixtures.s3_store
mirrored_store = storage_fixtures.mirrored_store
store = storage_fixtures.store
restartable_s3 = storage_fixtures.restartable_s3

PHONE = "+34612345678"
OTHER_PHONE = "+34699887766"


@pytest.fixture(autouse=True)
def pii_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPIPE_PII_KEY", "erasure-test-key-0123456789")
    monkeypatch.setenv("PII_REDACTION", "mask")


def save(store: RecordingStore, rid: str, conv: str, phone: str | None = None, seed: int = 0) -> bytes:
    """A recording with a caller, a transcript and a redacted transcript file on every side."""
    audio = make_wav(seconds=0.2, seed=seed)
    meta = {"caller": caller_info(phone).model_dump()} if phone else {}
    store.save_recording(audio, conv, metadata=meta, recording_id=rid)
    store.save_transcript(rid, f"llamada {rid} de {conv}")
    for side in store_sides(store)[1]:
        side._put(f"transcripts/{conv}/{rid}.redacted.txt", f"[PHONE] {rid}".encode())
    if isinstance(store, S3Store):
        # A download that a version before staging kept for good in the cache dir.
        store.cache_dir.mkdir(parents=True, exist_ok=True)
        (store.cache_dir / f"{rid}.wav").write_bytes(audio)
    return audio


def leftovers(store: RecordingStore, needles: list[bytes | re.Pattern[bytes]]) -> list[str]:
    """Every local file (hidden ones too) and S3 object whose path or content holds a needle
    (bytes, or a pattern searched for)."""
    patterns = [n if isinstance(n, re.Pattern) else re.compile(re.escape(n)) for n in needles]
    found: list[str] = []
    for side in store_sides(store)[1]:
        if isinstance(side, LocalStore):
            for path in side.root.rglob("*"):
                if path.is_file():
                    data = str(path.relative_to(side.root)).encode() + b"\0" + path.read_bytes()
                    found += [f"{path}" for n in patterns if n.search(data)][:1]
        else:
            assert isinstance(side, S3Store)
            listing = side.client.list_objects_v2(Bucket=side.bucket)
            for obj in listing.get("Contents", []):
                body = side.client.get_object(Bucket=side.bucket, Key=obj["Key"])["Body"].read()
                data = obj["Key"].encode() + b"\0" + body
                found += [f"s3://{side.bucket}/{obj['Key']}" for n in patterns if n.search(data)][:1]
            if side.cache_dir.exists():
                found += [
                    str(p)
                    for p in side.cache_dir.rglob("*")
                    if any(n.search(p.name.encode()) for n in patterns)
                ]
    return found


def assert_intact(store: RecordingStore, rid: str, audio: bytes) -> None:
    assert store.get_recording(rid) == audio
    assert store.get_transcript(rid).startswith(f"llamada {rid}")


def assert_receipt(receipt: ErasureReceipt, store: RecordingStore, erased: set[str]) -> dict[str, Any]:
    data = receipt.to_dict()
    assert data["complete"], data
    assert {r["recording_id"] for r in data["recordings"]} == erased
    objects = [o for r in data["recordings"] for o in r["removed"]] + data["other_removed"]
    assert data["counts"]["objects"] == len(objects)
    assert set(data["counts"]["by_backend"]) >= {s.backend for s in store_sides(store)[1]}
    for rec in data["recordings"]:  # audio, metadata, both transcripts and by-id on every side
        for side in store_sides(store)[1]:
            mine = {o["object"] for o in rec["removed"] if o["backend"] == side.backend}
            rid = rec["recording_id"]
            assert any(o.endswith(f"/{rid}.wav") for o in mine), mine
            assert any(o.endswith(f"/{rid}.json") for o in mine)
            assert any(o.endswith(f"/{rid}.redacted.txt") for o in mine)
            assert any(o.endswith(f"index/by-id/{rid}") for o in mine)
    return data


def test_erase_recording_leaves_nothing_of_it_anywhere(store: RecordingStore) -> None:
    gone = save(store, "rec-gone", "conv-shared", PHONE, seed=1)
    kept = save(store, "rec-kept", "conv-shared", PHONE, seed=2)
    kept_dotted = save(store, "rec-gone.2", "conv-shared", seed=3)  # an id that starts like the erased one
    store.modify_metadata("rec-gone", lambda m: None)  # a lock file and a second revision

    receipt = erase(store, recording_id="rec-gone")

    assert_receipt(receipt, store, {"rec-gone"})
    assert leftovers(store, [re.compile(rb"rec-gone(?!\.2)"), gone]) == []
    assert_intact(store, "rec-kept", kept)
    assert_intact(store, "rec-gone.2", kept_dotted)
    assert [r.recording_id for r in store.list_recordings().items] == ["rec-gone.2", "rec-kept"]
    with pytest.raises(RecordingNotFoundError):  # a second erase finds nothing: exit 2 in the CLI
        erase(store, recording_id="rec-gone")


def test_erase_conversation_includes_files_whose_index_was_lost(store: RecordingStore) -> None:
    audio = [save(store, f"rec-c{i}", "conv-secret", seed=10 + i) for i in range(2)]
    kept = save(store, "rec-other", "conv-public", seed=12)
    for side in store_sides(store)[1]:  # an orphan: audio of a crashed save whose entries are gone
        side._put(f"{side.audio_root}/conv-secret/rec-orphan.wav", audio[0])
    if isinstance(store, LocalStore):  # a temp file a crashed writer left
        store._put("metadata/conv-secret/keep.txt", b"x")
        (store.root / "metadata/conv-secret/.rec-c0.json.0123456789abcdef0123456789abcdef.tmp").write_bytes(
            b"{"
        )

    receipt = erase(store, conversation_id="conv-secret")

    data = assert_receipt(receipt, store, {"rec-c0", "rec-c1"})
    assert any(o["object"].endswith("rec-orphan.wav") for o in data["other_removed"])
    assert leftovers(store, [b"conv-secret", b"rec-c0", b"rec-c1", b"rec-orphan", *audio]) == []
    assert_intact(store, "rec-other", kept)
    local = next((s for s in store_sides(store)[1] if isinstance(s, LocalStore)), None)
    if local is not None:  # empty directories go too
        assert not (local.root / "audio" / "conv-secret").exists()
        assert not (local.root / "index" / "by-caller").exists()


def test_erase_by_caller_phone_follows_caller_changes(store: RecordingStore) -> None:
    first = save(store, "rec-p1", "conv-1", PHONE, seed=20)
    second = save(store, "rec-p2", "conv-2", PHONE, seed=21)
    other = save(store, "rec-q", "conv-3", OTHER_PHONE, seed=22)
    moved = save(store, "rec-moved", "conv-4", PHONE, seed=23)

    def reassign(meta: Any) -> None:
        meta.caller = caller_info(OTHER_PHONE)

    store.modify_metadata("rec-moved", reassign)  # not this caller's call any more

    receipt = erase(store, caller_phone="612 34 56 78")  # another notation of PHONE

    data = assert_receipt(receipt, store, {"rec-p1", "rec-p2"})
    assert data["request"] == {"caller_phone": "+34 6** ** ** 78"}  # the number itself is not echoed
    key = caller_info(PHONE).phone_key
    assert key is not None
    assert leftovers(store, [b"rec-p1", b"rec-p2", key.encode(), first, second]) == []
    for rid, audio in (("rec-q", other), ("rec-moved", moved)):
        assert_intact(store, rid, audio)
    other_key = caller_info(OTHER_PHONE).phone_key
    for side in store_sides(store)[1]:
        assert side._list_names(f"{store_index.BY_CALLER}/{other_key}") == ["rec-moved", "rec-q"]


def mirrored_on(server: RestartableS3, bucket_name: str, root: Path) -> MirroredStore:
    client = make_s3_client("us-east-1", server.endpoint, FAST)
    client.create_bucket(Bucket=bucket_name)
    s3 = S3Store(bucket_name, "cp", client, cache_dir=root / "cache")
    return MirroredStore(LocalStore(root / "recordings"), s3, s3_retry_after=0.0)


def test_s3_outage_leaves_a_resumable_erasure_that_sync_never_undoes(
    restartable_s3: RestartableS3, tmp_path: Path
) -> None:
    store = mirrored_on(restartable_s3, "outage", tmp_path)
    gone = save(store, "rec-out", "conv-out", PHONE, seed=30)
    kept = save(store, "rec-stay", "conv-out", seed=31)
    restartable_s3.stop()
    try:
        receipt = erase(store, recording_id="rec-out")
        data = receipt.to_dict()
        assert not data["complete"]
        assert data["recordings"][0]["error"].startswith("s3: ")
        # Local copy gone at once; only the tombstone says what is left to do on S3.
        assert leftovers(store.local, [b"rec-out", gone]) == [str(store.local.path("index/erasing/rec-out"))]
        # A pending-sync marker (as a racing update would leave) must not bring it back.
        store.local._put(store_index.pending_sync_key("rec-out"), b"token")
    finally:
        restartable_s3.start()
    # Back up: the rest waits for slow answers (FAST's 1 s read timeout timed out under a loaded CI).
    store.s3.client = make_s3_client("us-east-1", restartable_s3.endpoint)
    report = store.sync_pending()
    assert "rec-out" not in report.uploaded
    assert any(
        o["Key"].endswith("rec-out.wav") for o in store.s3.client.list_objects_v2(Bucket="outage")["Contents"]
    )

    resumed = resume_erasures(store)

    assert resumed.complete and [r.recording_id for r in resumed.recordings] == ["rec-out"]
    assert any(o.backend == "s3" for o in resumed.recordings[0].removed)
    assert leftovers(store, [b"rec-out", gone]) == []
    assert_intact(store, "rec-stay", kept)


def test_a_write_racing_an_erasure_does_not_resurrect_the_s3_copy(mirrored_store: MirroredStore) -> None:
    save(mirrored_store, "rec-race", "conv-race", seed=40)
    entry = mirrored_store.local._entry("rec-race")
    write_tombstone(mirrored_store.local, Tombstone(entry))  # an erasure has begun...
    purge_recording(mirrored_store.s3, entry)  # ...and cleaned S3, when an update lands there
    mirrored_store.modify_metadata("rec-race", lambda m: None)
    mirrored_store.save_transcript("rec-race", "late text")
    s3 = mirrored_store.s3
    assert s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", []) == []
    assert purge_recording(s3, entry) == []  # idempotent: nothing left to remove


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_erase_prints_receipt_and_rejects_unknown_ids_and_bad_phones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "recordings"
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(root))
    store = LocalStore(root)
    save(store, "rec-cli", "conv-cli", PHONE, seed=50)
    from callpipe.storage import get_audio_storage

    get_audio_storage()  # the catalog beside the store exists (state/) before the refused erasures
    before = sorted(os.walk(root))

    for argv, expected in (
        (["erase", "--recording-id", "rec-nope"], "nothing to erase"),
        (["erase", "--recording-id", "../etc"], "invalid recording_id"),
        (["erase", "--caller-phone", "12"], "not a valid number"),
        (["erase", "--caller-phone", "+34699000111"], "nothing to erase"),
    ):
        code, out, err = run_cli(argv, capsys)
        assert (code, out) == (2, ""), argv
        assert err.count("\n") == 1 and expected in err, err
    assert sorted(os.walk(root)) == before

    code, out, err = run_cli(["erase", "--caller-phone", PHONE], capsys)
    assert code == 0 and err == ""
    receipt = json.loads(out)
    assert receipt["complete"] and receipt["counts"]["recordings"] == 1
    assert leftovers(store, [b"rec-cli", b"conv-cli"]) == []
    code, out, _ = run_cli(["erase", "--resume"], capsys)
    assert code == 0 and json.loads(out)["counts"]["recordings"] == 0


def test_cli_erase_removes_the_calls_analytics_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from callpipe.analytics import open_analytics_store, rows_for_day
    from callpipe.analytics.store import default_root

    root = tmp_path / "recordings"
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(root))
    monkeypatch.delenv("CALLPIPE_ANALYTICS_DB", raising=False)
    store = LocalStore(root)
    save(store, "rec-row", "conv-row", PHONE, seed=51)
    save(store, "rec-kept", "conv-kept", None, seed=52)
    docs = [store.get_metadata("rec-row"), store.get_metadata("rec-kept")]
    day = docs[0].timestamp.date().isoformat()
    tables = open_analytics_store(local_root=root)
    tables.replace_day(day, *rows_for_day(docs))
    assert tables.get_call("rec-row") is not None
    tables.close()

    code, out, err = run_cli(["erase", "--recording-id", "rec-row"], capsys)
    assert code == 0 and err == ""
    assert json.loads(out)["analytics"] == {"recordings_with_rows_removed": 1, "rows_remain": []}
    assert json.loads(out)["complete"] is True
    tables = open_analytics_store(local_root=root, read_only=True)
    try:
        assert tables.get_call("rec-row") is None and tables.call_turns("rec-row") == []
        assert tables.get_call("rec-kept") is not None  # only the erased call leaves the tables
    finally:
        tables.close()
    # the tables refuse the next erasure (a trigger): the audio goes, the receipt says rows remain
    db = sqlite3.connect(default_root(local_root=root) / "listing.sqlite")
    with db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON erased BEGIN SELECT RAISE(ABORT, 'no'); END")
    db.close()
    code, out, err = run_cli(["erase", "--recording-id", "rec-kept"], capsys)
    assert code == 1 and json.loads(out)["complete"] is False
    assert "rows remain" in json.loads(out)["analytics"]["error"] and "analytics" in err
