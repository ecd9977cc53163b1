"""Through the API: a call that got its 201 is in the catalog as pending at once, and
``/processing/stats`` counts it from the catalog (nothing half-saved counted)."""

from __future__ import annotations

import time
from pathlib import Path

from callpipe.catalog import Catalog
from callpipe.catalog.cataloged import CatalogStore
from callpipe.storage import LocalStore
from callpipe_tests.service.conftest import auth, client_for, make_settings, post_call
from callpipe_tests.storage.conftest import make_wav


def test_a_201_call_is_pending_within_a_second(tmp_path: Path) -> None:
    store = CatalogStore(
        LocalStore(tmp_path / "store"), Catalog(path=tmp_path / "store/state/catalog.sqlite")
    )
    with client_for(make_settings(tmp_path), store, str(tmp_path / "analytics")) as client:
        response = post_call(client, make_wav(seconds=2.0, seed=3))
        assert response.status_code == 201, response.text
        rid = response.json()["recording_id"]
        deadline = time.monotonic() + 1.0
        while True:
            listed = [r.recording_id for r in store.list_recordings(processed=False).items]
            if rid in listed or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert listed == [rid]
        stats = client.get("/processing/stats", headers=auth("analyst"))
        assert stats.status_code == 200, stats.text
        queue = stats.json()["processing_queue"]
        assert (queue["total_recordings"], queue["processed"], queue["pending"]) == (1, 0, 1), queue
