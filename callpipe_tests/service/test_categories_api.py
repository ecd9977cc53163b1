"""The categories API on a real app over real analytics tables: roles, body bounds, validation,
the background apply over every stored call, the category filter, a call's matches, delete."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import generated_calls
from callpipe.categories import match, parse_rule
from callpipe.pii import RedactionMode
from callpipe.storage import LocalStore
from callpipe_tests.service.conftest import auth

RULE = "speaker: customer\nphrases: [darme de baja]\n"


def _fill(url: str) -> set[str]:
    """Two days of generated calls in the tables; the ids a customer says 'darme de baja' in."""
    tables = open_analytics_store(url)
    rule = parse_rule(RULE, "baja")
    expected = set()
    for day in ("2026-03-01", "2026-03-02"):
        docs = generated_calls(day, 25)
        tables.replace_day(day, *rows_for_day(docs, mode=RedactionMode.MASK))
        expected |= {d.recording_id for d in docs if match(rule, d) is not None}
    tables.close()
    return expected


def _wait_done(client: TestClient, name: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        body = client.get(f"/categories/{name}", headers=auth("analyst")).json()
        if body["progress"]["state"] == "done" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_put_applies_to_past_calls_and_filters(client: TestClient, analytics_url: str) -> None:
    expected = _fill(analytics_url)
    assert expected
    put = client.put("/categories/baja", content=RULE, headers=auth("analyst"))
    assert put.status_code == 202, put.text
    body = _wait_done(client, "baja")
    assert body["progress"]["state"] == "done"
    assert body["progress"]["covered"] == body["progress"]["total"] == 50
    assert body["version"] == put.json()["version"]
    listed = client.get("/recordings?category=baja&limit=100", headers=auth("analyst")).json()["items"]
    assert {r["recording_id"] for r in listed} == expected
    rid = sorted(expected)[0]
    [hit] = client.get(f"/recordings/{rid}/categories", headers=auth("analyst")).json()["categories"]
    assert hit["category"] == "baja" and hit["matched"] == ["darme", "de", "baja"]
    overview = client.get("/categories", headers=auth("analyst")).json()
    assert [c["name"] for c in overview["items"]] == ["baja"]
    assert sum(d["calls"] for d in overview["per_day"]) == len(expected)
    assert client.delete("/categories/baja", headers=auth("analyst")).status_code == 200
    assert client.get("/recordings?category=baja", headers=auth("analyst")).json()["items"] == []
    assert client.get("/categories/baja", headers=auth("analyst")).status_code == 404
    assert client.delete("/categories/baja", headers=auth("analyst")).status_code == 404


def test_roles_bounds_and_validation(client: TestClient, analytics_url: str) -> None:
    _fill(analytics_url)
    assert client.put("/categories/x", content=RULE).status_code == 401
    assert client.put("/categories/x", content=RULE, headers=auth("ingest")).status_code == 403
    assert client.get("/categories", headers=auth("ingest")).status_code == 403
    big = "phrases: [a]\n" + "#" * (70 * 1024)
    assert client.put("/categories/x", content=big, headers=auth("analyst")).status_code == 413
    bad = client.put("/categories/x", content="phrases: []\n", headers=auth("analyst"))
    assert bad.status_code == 422 and "phrases" in bad.json()["detail"]
    other = client.put("/categories/x", content="name: y\nphrases: [a]\n", headers=auth("analyst"))
    assert other.status_code == 422 and "differs" in other.json()["detail"]
    yaml_error = client.put("/categories/x", content="phrases: [a", headers=auth("analyst"))
    assert yaml_error.status_code == 422 and "YAML" in yaml_error.json()["detail"]
    assert client.put("/categories/bad name", content=RULE, headers=auth("analyst")).status_code == 422
    long = client.get("/recordings?category=" + "x" * 101, headers=auth("analyst"))
    assert long.status_code == 422
    assert client.get("/categories", headers=auth("analyst")).json()["items"] == []


def test_call_page_dashboard_and_form(
    client: TestClient, local_store: LocalStore, analytics_url: str
) -> None:
    import random
    import re

    from callpipe.analytics.synthetic import generated_call
    from callpipe_tests.service.conftest import KEYS
    from callpipe_tests.storage.conftest import make_wav

    rng, docs = random.Random(5), []
    for index in range(12):
        doc = generated_call(index, "2026-03-01", rng, "processed")
        local_store.save_recording(make_wav(seconds=1.0, seed=index), doc.conversation_id, doc, "wav")
        docs.append(local_store.get_metadata(doc.recording_id))
    writer = open_analytics_store(analytics_url)
    writer.replace_day("2026-03-01", *rows_for_day(docs, mode=RedactionMode.MASK))
    writer.close()
    rule = parse_rule(RULE, "baja")
    hits = {d.recording_id: match(rule, d) for d in docs if match(rule, d) is not None}
    assert hits and len(hits) < len(docs)
    assert client.post("/ui/login", data={"key": KEYS["analyst"]}, follow_redirects=False).status_code == 303
    form = {"name": "baja", "definition": RULE}
    cross = client.post("/ui/categories", data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    bad = client.post("/ui/categories", data={"name": "baja", "definition": "phrases: ["})
    assert bad.status_code == 422 and "not valid YAML" in bad.text
    saved = client.post("/ui/categories", data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/ui/categories?saved=baja"
    assert _wait_done(client, "baja")["progress"]["state"] == "done"
    rid, found = sorted(hits.items())[0]
    page = client.get(f"/ui/calls/{rid}").text
    highlighted = re.findall(r'<li class="turn (\w+) cat-match"', page)
    assert highlighted == ["customer"] * page.count("cat-match") and len(highlighted) == 1
    assert '<span class="chip cat">baja</span>' in page and "darme de baja</td>" in page
    marked = re.findall(r'<mark class="cat">(\w+)</mark>', page)
    assert [w.lower() for w in marked] == ["darme", "de", "baja"]  # in the matched turn only
    start = re.search(r'<li class="turn \w+ cat-match" data-start="([^"]+)"', page)
    doc = next(d for d in docs if d.recording_id == rid)
    assert start and abs(float(start.group(1)) - doc.turns[found.turn_index].start) < 0.01
    listing = client.get("/ui/calls?category=baja").text
    assert set(re.findall(r'href="/ui/calls/(gen-[^"]+)"', listing)) == set(hits)
    dashboard = client.get("/ui").text
    assert 'id="categories-by-day"' in dashboard and ">baja</a></th>" in dashboard
    client.cookies.clear()
    assert client.post("/ui/categories", data=form).status_code == 401
