"""In a real browser (Playwright driving the system Chromium): an analyst defines a category on
the categories page, sees its progress reach every stored call, and finds the past calls that
match it under the category filter of the call list (``callpipe serve`` over real tables)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import generated_calls
from callpipe.categories import match, parse_rule
from callpipe.pii import RedactionMode
from callpipe_tests.service.test_browser import CHROMIUM, serving

KEY = "browser-cat-analyst-key-0123456789"
RULE = "speaker: customer\nphrases: [darme de baja]\n"
pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, set[str]]]:
    """Past calls in the tables (written before any category exists), served on a free port."""
    tables_dir = tmp_path / "analytics"
    tables = open_analytics_store(str(tables_dir))
    rule, expected = parse_rule(RULE, "baja"), set()
    for day in ("2026-03-01", "2026-03-02"):
        docs = generated_calls(day, 10)
        tables.replace_day(day, *rows_for_day(docs, mode=RedactionMode.MASK))
        expected |= {d.recording_id for d in docs if match(rule, d) is not None}
    tables.close()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "S3_", "DAGSTER_", "CALLPIPE_"))
    }
    env |= {
        "CALLPIPE_API_KEYS": f"analyst:{KEY}",
        "CALLPIPE_PII_KEY": "browser-test-pii-key-0123",
        "CALLPIPE_ANALYTICS_DB": str(tables_dir),
        "STORAGE_LOCAL_PATH": str(tmp_path / "recordings"),
    }
    with serving(tmp_path, env, secrets=(KEY,)) as url:
        yield url, expected


def test_define_a_category_in_the_ui_and_see_past_calls_match(served: tuple[str, set[str]]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap as root (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    url, expected = served
    assert 0 < len(expected) < 20
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/ui/login")
        page.fill("#key", KEY)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{url}/ui")
        page.click("nav >> text=Categories")
        expect(page).to_have_url(f"{url}/ui/categories")
        page.fill("#c-name", "baja")
        page.fill("#c-definition", "phrases: []\n")  # invalid: a clear message, nothing stored
        page.click("#category-form button[type=submit]")
        expect(page.locator("#category-error")).to_contain_text("phrases")
        page.fill("#c-definition", RULE)
        page.click("#category-form button[type=submit]")
        expect(page).to_have_url(f"{url}/ui/categories?saved=baja")
        progress = page.locator(".progress[data-name=baja]")
        expect(progress).to_have_attribute("data-state", "done", timeout=60_000)
        expect(progress).to_contain_text("20 / 20 calls")
        page.click("#category-list a.cat-link")
        page.wait_for_url("**/ui/calls?category=baja")
        shown = page.locator("#call-list tbody tr td:nth-child(2) a").all_inner_texts()
        assert set(shown) == expected
        page.goto(f"{url}/ui")
        expect(page.locator("#categories-by-day th a")).to_have_text(["baja"])
        assert not errors, errors
        browser.close()
