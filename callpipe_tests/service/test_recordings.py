"""One call: metadata views, audio with range requests (local and S3), reprocess, erasure + audit, stats."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from callpipe.service import ServiceSettings
from callpipe.storage import LocalStore, RecordingNotFoundError, RecordingStore, S3Store, make_s3_client
from callpipe_tests.service.conftest import auth, client_for, post_call

SENSITIVE = "mi iban es ES91 2100 0418 4502 0005 1332 y mi telefono 612 345 678"


@pytest.fixture
def s3_store(s3_server: str, tmp_path: Path) -> S3Store:
    client = make_s3_client(region_name="us-east-1", endpoint_url=s3_server)
    bucket = f"svc-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3Store(bucket, "callpipe/api", client, cache_dir=tmp_path / "s3cache")


def _audit(settings: ServiceSettings) -> list[dict[str, Any]]:
    path = settings.audit_log
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_audio_range_requests(
    backend: str, request: pytest.FixtureRequest, settings: ServiceSettings, analytics_url: str, wav: bytes
) -> None:
    store: RecordingStore = request.getfixturevalue("local_store" if backend == "local" else "s3_store")
    with client_for(settings, store, analytics_url) as client:
        rid = post_call(client, wav).json()["recording_id"]
        url, headers = f"/recordings/{rid}/audio", auth("analyst")
        size = len(wav)
        whole = client.get(url, headers=headers)
        assert whole.status_code == 200 and whole.content == wav
        assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "audio/wav"
        cases = {
            "bytes=0-99": (0, 99),
            "bytes=100-": (100, size - 1),
            "bytes=-64": (size - 64, size - 1),
            f"bytes=10-{size + 500}": (10, size - 1),
        }
        for header, (first, last) in cases.items():
            part = client.get(url, headers={**headers, "Range": header})
            assert part.status_code == 206, header
            assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
            assert part.headers["content-length"] == str(last - first + 1)
            assert part.content == wav[first : last + 1]
        beyond = client.get(url, headers={**headers, "Range": f"bytes={size}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
        several = client.get(url, headers={**headers, "Range": "bytes=0-1,5-9"})
        assert several.status_code == 200 and several.content == wav
        assert client.get("/recordings/nope/audio", headers=headers).status_code == 404


def test_metadata_is_redacted_for_analysts_and_raw_for_audited_admins(
    client: TestClient, settings: ServiceSettings, wav: bytes
) -> None:
    rid = post_call(client, wav, transcript=SENSITIVE, caller_phone="612345678").json()["recording_id"]
    view = client.get(f"/recordings/{rid}", headers=auth("analyst"))
    assert view.status_code == 200
    text = view.text
    assert "2100" not in text and "612 345 678" not in text and "+34612345678" not in text
    assert "[IBAN]" in view.json()["transcription"]["text"]
    assert client.get(f"/recordings/{rid}?raw=true", headers=auth("analyst")).status_code == 403
    assert _audit(settings) == []
    raw = client.get(f"/recordings/{rid}?raw=true", headers=auth("admin"))
    assert raw.status_code == 200 and "2100 0418" in raw.json()["transcription"]["text"]
    (event,) = _audit(settings)
    assert event["action"] == "read_raw_metadata" and event["recording_id"] == rid
    assert event["role"] == "admin" and len(event["key_id"]) == 12 and "ts" in event
    assert "2100" not in json.dumps(event)
    assert client.get("/recordings/..%2Fetc", headers=auth("analyst")).status_code in (404, 422)


def test_reprocess_flags_the_call_like_the_cli(
    client: TestClient, local_store: LocalStore, wav: bytes
) -> None:
    rid = post_call(client, wav).json()["recording_id"]

    def done(meta: Any) -> None:
        meta.processed = True
        meta.status.status = "processed"

    local_store.modify_metadata(rid, done)
    response = client.post(f"/recordings/{rid}/reprocess?stage=sentiment", headers=auth("analyst"))
    assert response.status_code == 200
    assert response.json() == {"flagged": 1, "stages": ["sentiment"], "recording_ids": [rid]}
    meta = local_store.get_metadata(rid)
    assert meta.processed is False and meta.status.reprocess_requested
    assert meta.status.reprocess_stages == ["sentiment"]
    bad = client.post(f"/recordings/{rid}/reprocess?stage=astrology", headers=auth("analyst"))
    assert bad.status_code == 422 and "unknown stage astrology" in bad.json()["detail"]
    assert client.post("/recordings/nope/reprocess", headers=auth("analyst")).status_code == 404


def test_delete_erases_returns_the_receipt_and_audits(
    client: TestClient, local_store: LocalStore, settings: ServiceSettings, wav: bytes
) -> None:
    rid = post_call(client, wav, transcript=SENSITIVE).json()["recording_id"]
    keep = post_call(client, wav, conversation_id="conv-2").json()["recording_id"]
    assert client.delete(f"/recordings/{rid}", headers=auth("analyst")).status_code == 403
    response = client.delete(f"/recordings/{rid}", headers=auth("admin"))
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["complete"] is True and receipt["request"] == {"recording_id": rid}
    assert receipt["counts"]["recordings"] == 1 and receipt["counts"]["objects"] >= 3
    with pytest.raises(RecordingNotFoundError):
        local_store.get_metadata(rid)
    assert local_store.get_metadata(keep).recording_id == keep
    assert client.delete(f"/recordings/{rid}", headers=auth("admin")).status_code == 404
    events = _audit(settings)
    assert [(e["action"], e["outcome"]) for e in events] == [("erase", "complete"), ("erase", "not_found")]
    assert events[0]["objects_removed"] == receipt["counts"]["objects"]
    assert all(e["recording_id"] == rid and e["role"] == "admin" for e in events)
    assert "iban" not in settings.audit_log.read_text().lower()
    assert oct(settings.audit_log.stat().st_mode & 0o777) == "0o600"


def test_processing_stats_count_the_whole_store(
    client: TestClient, local_store: LocalStore, wav: bytes
) -> None:
    ids = [post_call(client, wav, conversation_id=f"c-{n}").json()["recording_id"] for n in range(3)]

    def done(meta: Any) -> None:
        meta.processed = True
        meta.status.status = "processed"

    local_store.modify_metadata(ids[0], done)
    response = client.get("/processing/stats", headers=auth("analyst"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"storage", "pipeline", "processing_queue"}
    queue = body["processing_queue"]
    assert {k: queue[k] for k in ("total_recordings", "processed", "pending", "failed")} == {
        "total_recordings": 3,
        "processed": 1,
        "pending": 2,
        "failed": 0,
    }
    assert queue["processing_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert body["storage"]["backend"] == "local" and body["storage"]["recordings"] == 3
    assert body["pipeline"]["pii_redaction"] == "mask"
