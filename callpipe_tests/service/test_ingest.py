"""POST /recordings and the WebSocket: the online recorder behind HTTP; bad input stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from callpipe.storage import LocalStore
from callpipe_tests.service.conftest import KEYS, auth, post_call

LIVE = "necesito revisar el salgo de mi cuesta"
WORDS = [
    {"word": w, "confidence": c}
    for w, c in zip(LIVE.split(), [0.95, 0.93, 0.9, 0.42, 0.9, 0.9, 0.38], strict=True)
]


def _files(store: LocalStore) -> list[Path]:
    return [p for p in Path(store.root).rglob("*") if p.is_file()] if Path(store.root).exists() else []


def test_ingest_runs_the_online_recorder(client: TestClient, local_store: LocalStore, wav: bytes) -> None:
    response = post_call(
        client,
        wav,
        transcript=LIVE,
        word_confidences=json.dumps(WORDS),
        agent_id="a-7",
        direction="outbound",
        caller_phone="+34 612 34 56 78",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "recording_id",
        "s3_path",
        "size_bytes",
        "checksum",
        "pending_sync",
        "online",
    }
    assert body["online"]["corrected_text"] == "necesito revisar el saldo de mi cuenta"
    assert [(c["original"], c["corrected"]) for c in body["online"]["corrections_made"]] == [
        ("salgo", "saldo"),
        ("cuesta", "cuenta"),
    ]
    meta = local_store.get_metadata(body["recording_id"])
    assert meta.processed is False and meta.extra["agent_id"] == "a-7" and meta.direction == "outbound"
    assert meta.caller.phone is None and meta.caller.phone_masked and meta.caller.phone_key
    assert local_store.get_recording(body["recording_id"]) == wav


@pytest.mark.parametrize(
    ("audio", "fields", "status", "message"),
    [
        (b"RIFF not really audio at all", {}, 422, "audio"),
        (b"", {}, 422, "audio is empty"),
        (None, {"word_confidences": "[{"}, 422, "word_confidences is not valid JSON"),
        (None, {"word_confidences": '{"a": 1}'}, 422, "word_confidences must be"),
        (
            None,
            {"word_confidences": '[{"word": "hola", "confidence": 7}]', "transcript": "hola"},
            422,
            "confidence",
        ),
        (None, {"direction": "sideways"}, 422, "direction"),
        (None, {"conversation_id": "../../etc"}, 422, "conversation_id"),
        (None, {"conversation_id": ""}, 422, "conversation_id"),
        (None, {"caller_phone": "12"}, 422, "caller phone"),
    ],
)
def test_bad_input_is_one_clear_4xx_and_nothing_is_stored(
    client: TestClient,
    local_store: LocalStore,
    wav: bytes,
    audio: bytes | None,
    fields: dict,
    status: int,
    message: str,
) -> None:
    response = post_call(client, wav if audio is None else audio, **fields)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and message.lower() in detail.lower()
    assert _files(local_store) == []


def test_missing_audio_part_is_422(client: TestClient, local_store: LocalStore) -> None:
    response = client.post("/recordings", headers=auth("ingest"), data={"conversation_id": "c"})
    assert response.status_code == 422
    assert response.json()["detail"] == "audio: Field required"
    assert _files(local_store) == []


def test_websocket_ingest_saves_on_the_final_message(
    client: TestClient, local_store: LocalStore, wav: bytes
) -> None:
    headers = auth("ingest")
    with client.websocket_connect("/recordings/stream", headers=headers) as ws:
        for start in range(0, len(wav), 4000):
            ws.send_bytes(wav[start : start + 4000])
        ws.send_text(
            json.dumps(
                {
                    "conversation_id": "conv-ws",
                    "transcript": LIVE,
                    "word_confidences": WORDS,
                    "agent_id": "a-9",
                }
            )
        )
        reply = ws.receive_json()
    assert reply["online"]["corrected_text"] == "necesito revisar el saldo de mi cuenta"
    meta = local_store.get_metadata(reply["recording_id"])
    assert meta.conversation_id == "conv-ws" and meta.extra["agent_id"] == "a-9"
    assert local_store.get_recording(reply["recording_id"]) == wav


def test_websocket_errors_close_cleanly_and_store_nothing(
    client: TestClient, local_store: LocalStore, wav: bytes
) -> None:
    with client.websocket_connect("/recordings/stream", headers=auth("ingest")) as ws:
        ws.send_bytes(b"not audio")
        ws.send_text(json.dumps({"conversation_id": "conv-ws"}))
        assert "audio" in ws.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1008
    with client.websocket_connect("/recordings/stream", headers=auth("ingest")) as ws:
        ws.send_bytes(wav)
        ws.send_text("{not json")
        assert ws.receive_json() == {"error": "the final message must be a JSON object"}
    for headers in ({}, auth("analyst"), {"Authorization": "Bearer " + KEYS["ingest"][:-1]}):
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/recordings/stream", headers=headers) as ws,
        ):
            ws.receive_text()
        assert refused.value.code == 1008
    assert _files(local_store) == []
