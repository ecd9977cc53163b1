"""The call outcome over HTTP: the dashboard's outcome counts and resolution rates (JSON API and
UI page), the outcome column and filter of the UI call list, and its paging links."""

from __future__ import annotations

import re
from collections import Counter

from fastapi.testclient import TestClient

from callpipe.storage import LocalStore
from callpipe_tests.service.conftest import auth
from callpipe_tests.service.test_tables import DAY, _login, fill

ENDINGS = ("resolved", "resolved", "resolved", "escalated", "unknown", "transferred", "resolved", "abandoned")


def test_dashboard_api_and_page_give_outcomes_and_resolution_rates(
    client: TestClient, local_store: LocalStore, analytics_url: str
) -> None:
    fill(local_store, analytics_url, count=16, outcomes=ENDINGS)
    assert client.get("/analytics/dashboard").status_code == 401
    board = client.get(f"/analytics/dashboard?date_from={DAY}&date_to={DAY}", headers=auth("analyst"))
    assert board.status_code == 200
    data = board.json()
    rows = client.get("/recordings?limit=500", headers=auth("analyst")).json()["items"]
    assert Counter(r["outcome"] for r in rows) == Counter(ENDINGS * 2)
    assert {r["outcome"]: r["calls"] for r in data["outcomes"]} == {
        "resolved": 8,
        "escalated": 2,
        "unknown": 2,
        "transferred": 2,
        "abandoned": 2,
    }
    assert data["resolution"] == {"known_outcome": 14, "resolved": 8, "resolution_rate": round(8 / 14, 4)}
    # by intent and by agent: recomputed here from the listed rows
    for key, part, name in (
        ("primary_intent", "resolution_by_intent", "intent"),
        ("agent_id", "by_agent", "agent_id"),
    ):
        for row in data[part]:
            mine = [r for r in rows if r[key] == row[name]]
            known = [r for r in mine if r["outcome"] != "unknown"]
            resolved = [r for r in known if r["outcome"] == "resolved"]
            assert (row["known_outcome"], row["resolved"]) == (len(known), len(resolved)), row
            assert row["resolution_rate"] == (round(len(resolved) / len(known), 4) if known else None)
    assert {r["intent"] for r in data["resolution_by_intent"]} == {
        r["primary_intent"] for r in rows if r["primary_intent"]
    }
    assert client.get("/analytics/dashboard?date_from=yesterday", headers=auth("analyst")).status_code == 422
    _login(client)
    page = client.get("/ui").text
    assert re.search(r'id="resolution-rate">Resolution rate: <strong>57% \(8 of 14\)</strong>', page)
    outcomes = page.split('id="outcomes"')[1].split("</table>")[0]
    assert re.search(r'o-resolved">resolved</span></a></td>\s*<td class="num">8</td>', outcomes)
    by_intent = page.split('id="resolution-by-intent"')[1].split("</table>")[0]
    assert by_intent.count("<tr>") == len(data["resolution_by_intent"]) + 1
    agents = page.split('id="agents"')[1].split("</table>")[0]
    first = data["by_agent"][0]
    assert f"({first['resolved']} of {first['known_outcome']})" in agents


def test_call_list_shows_and_filters_the_outcome_across_pages(
    client: TestClient, local_store: LocalStore, analytics_url: str
) -> None:
    fill(local_store, analytics_url, count=56, outcomes=ENDINGS)
    api = client.get("/recordings?outcome=resolved&limit=500", headers=auth("analyst")).json()["items"]
    assert len(api) == 28
    _login(client)
    first = client.get("/ui/calls?outcome=resolved")
    assert first.status_code == 200
    assert '<option value="resolved" selected>resolved</option>' in first.text
    assert "<th>Outcome</th>" in first.text
    assert set(re.findall(r'class="chip outcome o-(\w+)"', first.text)) == {"resolved"}
    linked = re.findall(r'href="/ui/calls/(gen-[^"]+)"', first.text)
    next_url = re.search(r'href="([^"]+)" id="next-page"', first.text)
    assert len(linked) == 25 and next_url
    assert "outcome=resolved" in next_url.group(1)  # the filter is carried in the paging link
    second = client.get(next_url.group(1).replace("&amp;", "&")).text
    more = re.findall(r'href="/ui/calls/(gen-[^"]+)"', second)
    assert 'id="next-page"' not in second and "outcome=resolved" in second  # the first-page link too
    assert sorted(linked + more) == sorted(r["recording_id"] for r in api)
    unknown = client.get("/ui/calls?outcome=unknown").text
    assert set(re.findall(r'class="chip outcome o-(\w+)"', unknown)) == {"unknown"}
    assert len(re.findall(r'href="/ui/calls/(gen-[^"]+)"', unknown)) == 7
    everything = client.get("/ui/calls").text
    assert set(re.findall(r'class="chip outcome o-(\w+)"', everything)) == set(ENDINGS)
