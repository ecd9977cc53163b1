"""The analyst web UI in a real browser (Playwright driving the system Chromium).

``callpipe demo`` records the bundled demo calls and runs the real offline pipeline on them (the
Dagster batch: Whisper, correction, analysis, analytics tables); ``callpipe serve`` serves them;
the browser logs in, filters the call list by intent, opens a call and checks its turns,
entities and audio. Screenshots go to a temporary directory; ``make screenshots`` refreshes
``docs/screenshots/`` (shown in the README).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("CALLPIPE_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="callpipe-shots-"))
"""Where the screenshots go: a temporary directory, or ``docs/screenshots`` when
``make screenshots`` sets ``CALLPIPE_SCREENSHOT_DIR`` (the test suite never rewrites the repo)."""
KEY = "browser-analyst-key-0123456789"
ADMIN = "browser-admin-key-0123456789"
pytestmark = pytest.mark.slow


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo calls processed by the real pipeline in a fresh directory, served on a free port."""
    work = tmp_path_factory.mktemp("ui")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "S3_", "DAGSTER_", "CALLPIPE_"))
    }
    env |= {
        "CALLPIPE_API_KEYS": f"analyst:{KEY},admin:{ADMIN}",
        "CALLPIPE_PII_KEY": "browser-test-pii-key-0123",
    }
    demo = subprocess.run(
        [_bin("callpipe"), "demo"], cwd=work, env=env, capture_output=True, text=True, timeout=1500
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    with serving(work, env, secrets=(KEY, ADMIN)) as url:
        yield url


@contextlib.contextmanager
def serving(cwd: Path, env: dict[str, str], secrets: tuple[str, ...] = ()) -> Iterator[str]:
    """``callpipe serve`` on a free port in ``cwd``, once ``/health`` answers; its log never
    holds any of ``secrets``."""
    port = _free_port()
    server = subprocess.Popen(
        [_bin("callpipe"), "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    out = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"callpipe serve did not start: {out[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log = server.stdout.read().decode() if server.stdout else ""
        assert not any(secret in log for secret in secrets)


def test_analyst_ui_in_chromium(served: str) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap as root (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    headers = {"Authorization": f"Bearer {KEY}"}
    calls = httpx.get(f"{served}/recordings?limit=100", headers=headers).json()["items"]
    assert calls and all(c["status"] == "processed" for c in calls), [c["status"] for c in calls]

    def entity_count(call: dict) -> int:
        return sum(v for k, v in call.items() if k.startswith("entities_") and v)

    # A call with live corrections and the most entities shows the most.
    target = max(
        calls,
        key=lambda c: ((c.get("turn_count") or 0) >= 2, bool(c.get("online_corrections")), entity_count(c)),
    )
    assert (target.get("turn_count") or 0) >= 2, "no demo call has speaker turns"
    assert entity_count(target) > 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

        page.goto(f"{served}/ui")
        expect(page).to_have_url(f"{served}/ui/login")
        page.fill("#key", KEY)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{served}/ui")
        assert KEY not in page.url
        page.wait_for_selector("#chart-calls .main-svg")
        page.wait_for_selector("#chart-intent .main-svg")
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        page.click("nav >> text=Calls")
        page.select_option("#f-intent", target["primary_intent"])
        page.click("#filters button[type=submit]")
        page.wait_for_url(f"**/ui/calls?*intent={target['primary_intent']}*")
        shown = page.locator("#call-list tbody tr .chip.intent").all_inner_texts()
        assert shown and set(shown) == {target["primary_intent"].replace("_", " ")}
        page.click(f"#call-list a[href='/ui/calls/{target['recording_id']}']")
        expect(page).to_have_url(f"{served}/ui/calls/{target['recording_id']}")

        turns = page.locator("#transcript .turn")
        assert turns.count() >= 2
        assert (
            page.locator("#transcript .turn.agent").count()
            and page.locator("#transcript .turn.customer").count()
        )
        assert page.locator("#transcript .turn .text").first.inner_text().strip()
        assert page.locator("#entities tbody mark.ent").count() > 0
        assert page.locator("#transcript mark.ent").count() > 0  # entities highlighted in the turns
        if target.get("offline_corrections") or (
            target.get("online_corrections") and not target.get("retranscribed")
        ):
            assert page.locator(".fixes li:not(.muted)").count() >= 1
        expect(page.locator("#intent")).to_have_text(target["primary_intent"].replace("_", " "))
        assert page.locator("#run-link").get_attribute("href").startswith("http://127.0.0.1:3000/runs/")
        page.wait_for_function("document.getElementById('player').duration > 1", timeout=20000)
        second = turns.nth(1)
        start = float(second.get_attribute("data-start"))
        second.click()
        page.wait_for_function(
            f"Math.abs(document.getElementById('player').currentTime - {start}) < 1.5", timeout=10000
        )
        page.evaluate("document.getElementById('player').pause()")
        page.screenshot(path=str(SCREENSHOTS / "call.png"), full_page=True)
        # Fixes of the displayed transcript: live ones when the live text was kept, else offline ones.
        corrected = [c for c in calls if c.get("online_corrections") and not c.get("retranscribed")]
        corrected = corrected or [c for c in calls if c.get("offline_corrections")]
        if corrected:  # heard -> corrected words highlighted in the transcript
            call = corrected[0]
            page.goto(f"{served}/ui/calls/{call['recording_id']}")
            assert page.locator(".fixes li:not(.muted)").count() >= 1
            assert page.locator("#transcript mark.fix").count() >= 1
            page.screenshot(path=str(SCREENSHOTS / "call_corrections.png"), full_page=True)
        # The outcome: a column of the call list and a filter, carried in the form.
        ended = next(c["outcome"] for c in calls if c["outcome"] != "unknown")
        page.goto(f"{served}/ui/calls")
        page.select_option("#f-outcome", ended)
        page.click("#filters button[type=submit]")
        page.wait_for_url(f"**/ui/calls?*outcome={ended}*")
        chips = page.locator("#call-list tbody tr .chip.outcome").all_inner_texts()
        assert chips and set(chips) == {ended} and len(chips) == sum(c["outcome"] == ended for c in calls)
        expect(page.locator("#f-outcome")).to_have_value(ended)
        page.goto(f"{served}/ui")
        rate = page.locator("#resolution-rate").inner_text()
        assert "Resolution rate" in rate and "%" in rate, rate
        assert page.locator("#outcomes tbody tr").count() == 5
        page.goto(f"{served}/docs")  # OpenAPI docs from the bundled Swagger UI, no CDN
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("callpipe")
        assert page.locator(".swagger-ui .authorize").count() == 1
        assert not errors, errors
        browser.close()


def test_the_demo_has_a_call_of_each_outcome_after_processing(served: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    calls = httpx.get(f"{served}/recordings?limit=100", headers=headers).json()["items"]
    found = {c["outcome"] for c in calls}
    assert {"resolved", "escalated", "transferred", "abandoned"} <= found, {
        c["recording_id"]: c["outcome"] for c in calls
    }
    board = httpx.get(f"{served}/analytics/dashboard", headers=headers).json()
    assert {r["outcome"]: r["calls"] for r in board["outcomes"]} == {
        o: sum(c["outcome"] == o for c in calls)
        for o in ("resolved", "escalated", "abandoned", "transferred", "unknown")
    }


def test_serve_needs_keys_or_demo_which_prints_one_key_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLPIPE_", "STORAGE_"))}
    refused = subprocess.run(
        [_bin("callpipe"), "serve", "--port", str(_free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "no API keys" in refused.stderr
    port = _free_port()
    server = subprocess.Popen(
        [_bin("callpipe"), "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert "demo key" in first
        key = first.rsplit(": ", 1)[1].strip()
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/processing/stats", headers={"Authorization": f"Bearer {key}"}
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.3)
        assert response.status_code == 200
        assert response.json()["processing_queue"]["total_recordings"] == 0
    finally:
        server.terminate()
        rest = server.communicate(timeout=30)[0]
    assert key not in rest  # printed once, never logged
