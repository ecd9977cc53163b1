"""Keys, roles and sessions: 401 without or with an unknown key, 403 for the wrong role."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callpipe.service import ServiceConfigError, ServiceSettings, parse_keys
from callpipe.service.auth import SESSION_COOKIE, make_session, read_session
from callpipe_tests.service.conftest import KEYS, UNKNOWN_KEY, auth

# (method, path, role that may call it); the recording does not exist: an allowed call gets 404/422.
ENDPOINTS = [
    ("GET", "/processing/stats", "analyst"),
    ("GET", "/recordings", "analyst"),
    ("GET", "/recordings/r-missing", "analyst"),
    ("GET", "/recordings/r-missing/audio", "analyst"),
    ("POST", "/recordings/r-missing/reprocess", "analyst"),
    ("DELETE", "/recordings/r-missing", "admin"),
    ("POST", "/recordings", "ingest"),
]
ALLOWED = {"analyst": {"analyst", "admin"}, "admin": {"admin"}, "ingest": {"ingest"}}


@pytest.mark.parametrize(("method", "path", "needed"), ENDPOINTS)
def test_auth_matrix(client: TestClient, method: str, path: str, needed: str) -> None:
    assert client.request(method, path).status_code == 401
    unknown = client.request(method, path, headers={"Authorization": f"Bearer {UNKNOWN_KEY}"})
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"] == "Bearer"
    assert client.request(method, path, headers={"Authorization": f"Basic {KEYS[needed]}"}).status_code == 401
    for role in KEYS:
        status = client.request(method, path, headers=auth(role)).status_code
        if role in ALLOWED[needed]:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)


def test_health_needs_no_key_and_docs_are_served(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["checks"]["store.local"] == {"status": "ok"}
    assert client.get("/openapi.json").json()["info"]["title"] == "callpipe"
    assert "swagger" in client.get("/docs").text.lower()


def test_no_keys_refuses_to_start_unless_demo() -> None:
    with pytest.raises(ServiceConfigError, match="no API keys"):
        ServiceSettings.from_env({})
    settings, key = ServiceSettings.from_env({}, demo=True)
    assert key and len(key) >= 24
    principal = settings.authenticate(key)
    assert principal is not None and principal.roles == {"admin", "analyst", "ingest"}
    assert settings.authenticate(key + "x") is None


def test_key_parsing_errors_never_echo_the_key() -> None:
    secret = "s3cr3t-value-that-is-long"
    for text in (f"boss:{secret}", secret, "analyst:tiny-key"):
        with pytest.raises(ServiceConfigError) as exc:
            parse_keys(text)
        assert secret not in str(exc.value) and "tiny-key" not in str(exc.value)
    keys = parse_keys(f"analyst:{secret}, ingest:{secret},admin:{secret}z")
    assert sorted(sorted(k.roles) for k in keys) == [["admin"], ["analyst", "ingest"]]
    assert all(secret not in repr(k) for k in keys)


def test_admin_implies_analyst_not_ingest(settings: ServiceSettings) -> None:
    admin = settings.authenticate(KEYS["admin"])
    assert admin is not None and admin.roles == {"admin", "analyst"}
    analyst = settings.authenticate(KEYS["analyst"])
    assert analyst is not None and analyst.roles == {"analyst"}


def test_login_sets_a_signed_httponly_cookie_not_the_key(client: TestClient) -> None:
    bad = client.post("/ui/login", data={"key": UNKNOWN_KEY}, follow_redirects=False)
    assert bad.status_code == 401 and SESSION_COOKIE not in bad.cookies
    ingest = client.post("/ui/login", data={"key": KEYS["ingest"]}, follow_redirects=False)
    assert ingest.status_code == 401
    response = client.post("/ui/login", data={"key": KEYS["analyst"]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui"
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert KEYS["analyst"] not in cookie
    # The cookie authenticates reads, never writes.
    assert client.get("/recordings/r-missing").status_code == 404
    assert client.delete("/recordings/r-missing").status_code == 401
    assert client.post("/recordings/r-missing/reprocess").status_code == 401
    client.post("/ui/logout")
    assert client.get("/recordings/r-missing").status_code == 401


def test_session_cookie_forgery_expiry_and_revocation(tmp_path: Path, settings: ServiceSettings) -> None:
    principal = settings.authenticate(KEYS["analyst"])
    assert principal is not None
    value = make_session(settings, principal, now=1000.0)
    assert read_session(settings, value, now=1001.0) == principal
    assert read_session(settings, value, now=1000.0 + settings.session_seconds + 1) is None
    body, sig = value.split(".")
    assert read_session(settings, f"{body}.{sig[:-2]}AA", now=1001.0) is None
    assert read_session(settings, "garbage", now=1001.0) is None
    revoked = ServiceSettings(
        keys=parse_keys(f"analyst:{KEYS['admin']}"), session_secret=settings.session_secret
    )
    assert read_session(revoked, value, now=1001.0) is None


def test_keys_never_reach_the_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for role in KEYS:
        client.get("/recordings/r-missing", headers=auth(role))
    client.get("/recordings", headers={"Authorization": f"Bearer {UNKNOWN_KEY}"})
    text = caplog.text
    assert "GET /recordings/r-missing" in text
    assert not any(key in text for key in (*KEYS.values(), UNKNOWN_KEY))
