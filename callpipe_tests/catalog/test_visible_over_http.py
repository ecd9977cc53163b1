"""Over real HTTP against a ``callpipe serve`` process (catalog on by default): a call is listed
as pending within a second of its 201, its page shows what is known, the stats, the dashboard and
the list agree, and a save parked between its audio and its document is never listed or counted
(then swept when the killed server starts again)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from callpipe_tests.attacks.server import KEYS, Server, auth
from callpipe_tests.catalog.test_list_merge import kpis
from callpipe_tests.storage.conftest import make_wav

pytestmark = pytest.mark.slow


def _post(server: Server, seed: int) -> httpx.Response:
    return httpx.post(
        f"{server.url}/recordings",
        headers=auth("ingest"),
        files={"audio": ("call.wav", make_wav(seconds=2.0, seed=seed), "audio/wav")},
        data={"conversation_id": f"conv-{seed}"},
        timeout=60,
    )


def _listed(server: Server, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/recordings", params=params, headers=auth("analyst"), timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _queue(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/processing/stats", headers=auth("analyst"), timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json()["processing_queue"])


@contextlib.contextmanager
def _ui(server: Server) -> Iterator[httpx.Client]:
    """A browser-like client logged in to the web UI with the analyst key."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        login = client.post("/ui/login", data={"key": KEYS["analyst"]})
        assert login.status_code in (200, 303), login.text
        yield client


def test_a_half_saved_call_is_never_listed_and_a_stored_one_is_at_once(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    ready = tmp_path / "parked"
    parked = Server(root, CALLPIPE_FAULT_PARK="save:audio", CALLPIPE_FAULT_READY=str(ready)).start()
    try:
        hung = threading.Thread(target=lambda: _post_quietly(parked), daemon=True)
        hung.start()
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline, "the save never reached save:audio"
            time.sleep(0.05)
        assert any((root / "recordings" / "audio").rglob("*.wav")), "no audio written: nothing tested"
        assert _listed(parked) == [] and _listed(parked, status="pending") == []
        queue = _queue(parked)
        assert (queue["total_recordings"], queue["pending"]) == (0, 0), queue
        with _ui(parked) as ui:
            assert kpis(ui.get("/ui").text)["pending"] == 0
    finally:
        parked.kill()  # kill -9 mid-save

    server = Server(root).start()  # the next start sweeps the save; default stats cache (a 201 clears it)
    try:
        assert _listed(server) == [] and _queue(server)["total_recordings"] == 0
        assert not any((root / "recordings" / "audio").rglob("*.wav"))
        response = _post(server, seed=1)
        assert response.status_code == 201, response.text
        rid, posted = response.json()["recording_id"], time.monotonic()
        while not (pending := [c["recording_id"] for c in _listed(server, status="pending")]):
            assert time.monotonic() - posted < 1.0, "not listed within a second of its 201"
            time.sleep(0.02)
        assert pending == [rid]
        assert [c["recording_id"] for c in _listed(server)] == [rid]
        assert _listed(server, status="processed") == [] and _listed(server, status="failed") == []
        queue = _queue(server)
        assert (queue["total_recordings"], queue["processed"], queue["pending"]) == (1, 0, 1), queue
        with _ui(server) as ui:
            page = ui.get(f"/ui/calls/{rid}")
            assert page.status_code == 200, page.text[-2000:]
            assert "st-pending" in page.text and "2 s" in page.text
            counts = kpis(ui.get("/ui").text)
            assert (counts["calls"], counts["pending"], counts["processed"], counts["failed"]) == (1, 1, 0, 0)
            assert rid in ui.get("/ui/calls", params={"status": "pending"}).text
    finally:
        server.stop()


def _post_quietly(server: Server) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server is killed while this request waits
        _post(server, seed=0)
