"""The call list and the dashboard merge the catalog's unprocessed calls with the analytics tables:
each call once, newest first, paging exact, the filters' meaning kept, counts as in the stats."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callpipe.catalog import Catalog
from callpipe.catalog.cataloged import CatalogStore
from callpipe.storage import LocalStore
from callpipe_tests.service.conftest import KEYS, auth, client_for, make_settings, post_call
from callpipe_tests.service.test_tables import DAY, fill
from callpipe_tests.storage.conftest import make_wav


def _ids(client: TestClient, **params: object) -> list[str]:
    ids, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/recordings", params=query, headers=auth("analyst"))
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [c["recording_id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


_KPI = re.compile(r'<span class="n">(\d+)</span><span class="l">(\w+)</span>')


def kpis(html: str) -> dict[str, int]:
    """The dashboard's headline counts (calls, processed, pending, failed) from its HTML."""
    return {label: int(n) for n, label in _KPI.findall(html)}


def _kpis(client: TestClient) -> dict[str, int]:
    assert client.post("/ui/login", data={"key": KEYS["analyst"]}).status_code in (200, 303)
    return kpis(client.get("/ui").text)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_tables_and_catalog_merge_into_one_list(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    root = tmp_path / "store"
    if kind == "postgres":
        catalog = Catalog(dsn=request.getfixturevalue("pg_url"))
    else:
        catalog = Catalog(path=root / "state" / "catalog.sqlite")
    store = CatalogStore(LocalStore(root), catalog)
    analytics = str(tmp_path / "analytics")
    in_tables = fill(store, analytics)  # type: ignore[arg-type]  # 11 processed, 1 failed on DAY
    with client_for(make_settings(tmp_path), store, analytics) as client:
        new = []
        for seed in range(3):
            response = post_call(client, make_wav(seconds=1.0, seed=seed), conversation_id=f"conv-{seed}")
            assert response.status_code == 201, response.text
            new.append(response.json()["recording_id"])
        everything = _ids(client, limit=4)
        assert len(everything) == len(set(everything)) == 15  # each call once over the pages
        assert everything[:3] == sorted(new, reverse=True)  # today's calls first, newest first
        assert set(everything[3:]) == set(in_tables)
        assert _ids(client, limit=2, status="pending") == sorted(new, reverse=True)
        failed = _ids(client, status="failed")
        assert len(failed) == 1 and failed[0] in in_tables  # the table row, not a second one
        assert _ids(client, status="processed", limit=5) == _ids(client, status="processed", limit=100)
        assert len(_ids(client, status="processed")) == 11
        assert _ids(client, date_from=DAY, date_to=DAY, limit=5) == everything[3:]
        assert not set(new) & set(_ids(client, intent="factura"))  # an analysis filter: tables only
        assert not set(new) & set(_ids(client, q="factura"))

        store.save_recording(make_wav(seed=9), "conv-9", {"recording_id": "rec-saving"})
        store.catalog.mark("rec-saving", save_state="saving")  # a save whose document is not there yet
        assert "rec-saving" not in _ids(client)

        queue = client.get("/processing/stats", headers=auth("analyst")).json()["processing_queue"]
        assert (queue["total_recordings"], queue["pending"], queue["failed"]) == (15, 3, 1), queue
        kpis = _kpis(client)
        assert (kpis["calls"], kpis["pending"], kpis["failed"], kpis["processed"]) == (15, 3, 1, 11)
        page = client.get("/ui/calls?status=pending")
        assert all(rid in page.text for rid in new) and "rec-saving" not in page.text
