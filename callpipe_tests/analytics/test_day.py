"""A real processed day (demo calls through the real correction and analysis models) in the tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from callpipe.analytics import CALLS_COLUMNS, open_analytics_store
from callpipe.defs.assets import ALL_ASSETS
from callpipe.defs.resources import AnalyticsTablesResource, RecordingStoreResource, StageModelsResource
from callpipe.storage import LocalStore
from callpipe_tests.demo_recordings import record_demo_calls

pytestmark = pytest.mark.slow

DAY = "2026-11-24"
CALLS = ["saldo", "factura", "correo"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("day")


@pytest.fixture(scope="module")
def store(root: Path) -> LocalStore:
    store = LocalStore(root / "recordings")
    # confident live words: those live transcripts are kept; the bill call's is re-transcribed
    # with Whisper, which gives it turns by speaker
    record_demo_calls(store, DAY, ["saldo", "correo"], confident=True)
    record_demo_calls(store, DAY, ["factura"], first_minute=5)
    return store


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _materialize(store: LocalStore, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    resources = {
        "store": RecordingStoreResource(backend="local", local_path=str(store.root)),
        "tables": AnalyticsTablesResource(),
        "models": StageModelsResource(),
    }
    return dg.materialize(ALL_ASSETS, partition_key=DAY, resources=resources, instance=instance)


def _metadata(instance: dg.DagsterInstance, asset: str) -> dict[str, object]:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None and event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@pytest.fixture(scope="module")
def first(store: LocalStore, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return _materialize(store, instance)


def test_processed_day_is_in_the_tables(
    root: Path, instance: dg.DagsterInstance, first: dg.ExecuteInProcessResult
) -> None:
    assert first.success
    tables = open_analytics_store(read_only=True, local_root=root / "recordings")
    rows, cursor = tables.list_calls(limit=10)
    assert cursor is None and sorted(r["recording_id"] for r in rows) == sorted(f"{DAY}-{c}" for c in CALLS)
    assert {r["status"] for r in rows} == {"processed"} and all(r["run_id"] == first.run_id for r in rows)
    bill = tables.get_call(f"{DAY}-factura")
    assert bill is not None and bill["sentiment_label"] in {"negative", "frustrated"}
    assert bill["primary_intent"] and bill["talk_seconds"] and bill["live_wer_measured"] is not None
    assert bill["retranscribed"] and bill["turn_count"] >= 4
    turns = tables.call_turns(f"{DAY}-factura")
    assert len(turns) >= 4 and turns[0]["speaker"] == "agent" and turns[0]["text"]
    assert any(t["sentiment_label"] for t in turns)
    amounts = [e for e in tables.call_entities(f"{DAY}-factura") if e["category"] == "amounts"]
    assert amounts and bill["entities_amounts"] == len(amounts)
    assert tables.list_calls(q="FACTURA harto")[0][0]["recording_id"] == f"{DAY}-factura"
    tables.close()
    assert _metadata(instance, "call_analytics")["processed_this_run"] == 3
    meta = _metadata(instance, "calls")
    assert meta["dagster/row_count"] == 3 and meta["processed"] == 3
    schema = meta["dagster/column_schema"]
    assert [c.name for c in schema.columns] == [name for name, _, _ in CALLS_COLUMNS]
    summary = _metadata(instance, "daily_call_summary")
    assert summary["processed"] == 3 and summary["measured_calls"] == 3
    value = first.asset_value("daily_call_summary")
    assert sum(value["sentiment"].values()) == 3 and sum(value["intents"].values()) == 3


def test_rerun_with_nothing_to_do_still_describes_the_day(
    root: Path, store: LocalStore, instance: dg.DagsterInstance, first: dg.ExecuteInProcessResult
) -> None:
    second = _materialize(store, instance)
    assert second.success and second.asset_value("recordings")["work"] == []
    assert _metadata(instance, "call_analytics")["processed_this_run"] == 0
    meta = _metadata(instance, "calls")
    assert meta["processed"] == 3 and meta["dagster/row_count"] == 3
    tables = open_analytics_store(read_only=True, local_root=root / "recordings")
    assert len(tables.list_calls(limit=100)[0]) == 3  # replaced, not appended
    assert all(r["run_id"] == first.run_id for r in tables.list_calls()[0])  # provenance kept
    tables.close()
    event = instance.get_latest_materialization_event(dg.AssetKey("daily_call_summary"))
    assert event is not None
    dist = event.asset_materialization.metadata["sentiment_distribution"]
    assert isinstance(dist, dg.TableMetadataValue) and sum(r.data["calls"] for r in dist.records) == 3
