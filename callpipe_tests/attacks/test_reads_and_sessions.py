"""Issue 17 items 5, 6 and 7: every admin audio response that sends bytes is audited, logout ends
the session on the server, login refuses cross-site forms and guessing, no server path is shown."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from callpipe_tests.attacks.server import KEYS, Server, auth, running

pytestmark = pytest.mark.slow


def store_one(server: Server, wav: bytes, conversation_id: str = "conv-read") -> dict:
    response = httpx.post(
        f"{server.url}/recordings",
        headers=auth("ingest"),
        files={"audio": ("call.wav", wav, "audio/wav")},
        data={"conversation_id": conversation_id},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(
    "range_header",
    [None, "bytes=0-", "bytes=-99999999", "bytes=5-1", "BYTES=0-", "items=0-", "bytes=100-199"],
)
def test_every_admin_audio_response_that_sends_bytes_is_audited(
    server: Server, wav: bytes, range_header: str | None
) -> None:
    recording_id = store_one(server, wav)["recording_id"]
    before = len(server.audit_lines())
    headers = {**auth("admin"), **({"Range": range_header} if range_header else {})}
    response = httpx.get(f"{server.url}/recordings/{recording_id}/audio", headers=headers, timeout=30)
    assert response.status_code in (200, 206) and response.content
    lines = server.audit_lines()[before:]
    assert len(lines) == 1, (
        f"{range_header!r}: {len(response.content)} bytes served, {len(lines)} audit lines"
    )
    event = json.loads(lines[0])
    assert event["action"] == "read_audio" and event["recording_id"] == recording_id
    assert event["outcome"] == "served" and event["bytes"] == len(response.content)
    assert event["key_id"] and KEYS["admin"] not in lines[0]


def login(server: Server, client: httpx.Client, key: str, **headers: str) -> httpx.Response:
    return client.post(f"{server.url}/ui/login", data={"key": key}, headers=headers, follow_redirects=False)


def test_logout_ends_the_session_on_the_server_even_across_a_restart(tmp_path: Path) -> None:
    with running(tmp_path) as server, httpx.Client(timeout=30) as client:
        assert login(server, client, KEYS["analyst"]).status_code == 303
        kept = client.cookies["callpipe_session"]
        assert client.get(f"{server.url}/recordings").status_code == 200
        with httpx.Client(timeout=30) as other:
            assert login(server, other, KEYS["analyst"]).status_code == 303
            live = other.cookies["callpipe_session"]
        assert client.post(f"{server.url}/ui/logout").status_code == 303
        stolen = {"callpipe_session": kept}  # the cookie as it was before logout (a copy, a proxy log)
        assert httpx.get(f"{server.url}/recordings", cookies=stolen, timeout=30).status_code == 401
        assert httpx.get(f"{server.url}/recordings", cookies={"callpipe_session": live}).status_code == 200
    with running(tmp_path) as server:  # another process, the same state folder and secret
        assert httpx.get(f"{server.url}/recordings", cookies=stolen, timeout=30).status_code == 401
        assert httpx.get(f"{server.url}/recordings", cookies={"callpipe_session": live}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
    ids=["foreign-origin", "cross-site-fetch", "null-origin"],
)
def test_a_cross_site_login_form_gets_no_session(server: Server, headers: dict[str, str]) -> None:
    with httpx.Client(timeout=30) as client:
        response = login(server, client, KEYS["analyst"], **headers)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        same = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        assert login(server, client, KEYS["analyst"], **same).status_code == 303


def test_failed_logins_are_limited(tmp_path: Path) -> None:
    with running(tmp_path) as server, httpx.Client(timeout=30) as client:
        for n in range(10):
            assert login(server, client, f"guess-{n:04d}-0123456789abcdef").status_code == 401
        refused = login(server, client, KEYS["analyst"])  # even the right key, until the window passes
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "set-cookie" not in refused.headers


def test_no_server_path_reaches_a_client(server: Server, wav: bytes) -> None:
    created = store_one(server, wav, "conv-paths")
    assert "local_path" not in created and "metadata_path" not in created
    assert str(server.root) not in json.dumps(created)
    for path in ("/recordings/rec-does-not-exist", "/recordings/rec-does-not-exist/audio"):
        response = httpx.get(f"{server.url}{path}", headers=auth("admin"), timeout=30)
        assert response.status_code == 404
        assert str(server.root) not in response.text and "LocalStore" not in response.text
    erased = httpx.delete(f"{server.url}/recordings/rec-does-not-exist", headers=auth("admin"), timeout=30)
    assert erased.status_code == 404 and str(server.root) not in erased.text
