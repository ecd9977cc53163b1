"""The analytics tables as Dagster assets: a day materialized in process (finished calls, so no
model loads) leaves ``calls``, ``turns``, ``entities`` and ``day_aggregates`` materialized with a
column schema and row counts that match what the store holds, on the embedded store (locally and
with the day files in an S3 bucket, moto server on loopback) and on PostgreSQL."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from callpipe.analytics import CALLS_COLUMNS, ENTITIES_COLUMNS, TURNS_COLUMNS, open_analytics_store
from callpipe.analytics.synthetic import generated_call
from callpipe.defs.assets import ALL_ASSETS
from callpipe.defs.checks import ALL_CHECKS
from callpipe.defs.definitions import build_defs
from callpipe.defs.resources import AnalyticsTablesResource, StageModelsResource
from callpipe.defs.table_assets import DAY_AGGREGATES_COLUMNS
from callpipe.schema import RecordingMetadata
from callpipe.stage_runner import stage_versions
from callpipe_tests.defs.conftest import StoreSetup, local_setup

KEY = "2025-03-04"
TABLES = {
    "calls": CALLS_COLUMNS,
    "turns": TURNS_COLUMNS,
    "entities": ENTITIES_COLUMNS,
    "day_aggregates": DAY_AGGREGATES_COLUMNS,
}
_COPIED = (
    "processed",
    "processing_mode",
    "status",
    "online_transcription",
    "transcription",
    "turns",
    "sentiment",
    "intent",
    "topics",
    "entities",
    "conversation_metrics",
)


def _seed(setup: StoreSetup, processed: int, failed: int) -> list[RecordingMetadata]:
    """Saved calls of ``KEY`` whose documents are finished (processed at the current stage
    versions, or failed for good): a run has nothing to do for them but write the tables."""
    rng = random.Random(7)
    docs = []
    for index in range(processed + failed):
        doc = generated_call(index, KEY, rng, "processed" if index < processed else "failed")
        setup.save(doc.recording_id, doc.timestamp)

        def finish(meta: RecordingMetadata, doc: RecordingMetadata = doc) -> None:
            for name in _COPIED:
                setattr(meta, name, getattr(doc, name))
            if meta.processed:
                meta.provenance.stage_versions = stage_versions()
                meta.provenance.run_id = "earlier-run"

        docs.append(setup.store.modify_metadata(doc.recording_id, finish))
    return docs


def _materialize(setup: StoreSetup, tables: AnalyticsTablesResource) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            partition_key=KEY,
            resources={"store": setup.resource, "tables": tables, "models": StageModelsResource()},
            instance=instance,
            raise_on_error=False,
        )
    return result


def _table_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        name = materialization.asset_key.to_user_string()
        if name in TABLES:
            assert materialization.partition == KEY
            found[name] = {k: v.value for k, v in materialization.metadata.items()}
    return found


def _assert_described(meta: dict[str, dict[str, Any]], counts: dict[str, int]) -> None:
    """Each table's materialization: its column schema, and its rows as counted in the store."""
    assert sorted(meta) == sorted(TABLES)
    for table, columns in TABLES.items():
        schema = meta[table]["dagster/column_schema"]
        assert [c.name for c in schema.columns] == [name for name, _, _ in columns]
        assert meta[table]["dagster/row_count"] == counts[table], table
        assert meta[table]["dagster/partition_row_count"] == counts[table], table
        assert meta[table]["dagster/table_name"] == table


def _expected(docs: list[RecordingMetadata]) -> dict[str, int]:
    return {
        "calls": len(docs),
        "turns": sum(len(d.turns) for d in docs),
        "entities": sum(
            len(items) for d in docs if d.entities for items in d.entities.model_dump().values()
        ),
        "day_aggregates": 1,
    }


def _store_counts(reader: Any, ids: list[str]) -> dict[str, int]:
    """Rows of the day as the store's own reader returns them."""
    calls, _ = reader.list_calls(limit=1000)
    return {
        "calls": len(calls),
        "turns": sum(len(reader.call_turns(rid)) for rid in ids),
        "entities": sum(len(reader.call_entities(rid)) for rid in ids),
        "day_aggregates": 1 if reader.day_summary(KEY)["recordings"] else 0,
    }


def test_tables_are_assets_with_lineage_and_a_resource() -> None:
    defs = build_defs()
    graph = defs.resolve_asset_graph()
    parents = {
        name: {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys} for name in TABLES
    }
    assert parents == {
        "calls": {"call_analytics"},
        "turns": {"call_analytics"},
        "entities": {"call_analytics"},
        "day_aggregates": {"calls"},
    }
    summary = graph.get(dg.AssetKey("daily_call_summary")).parent_keys
    assert {k.to_user_string() for k in summary} == {"calls", "day_aggregates"}
    for name in TABLES:
        assert graph.get(dg.AssetKey(name)).partitions_def is not None
    assert isinstance(defs.resources["tables"], AnalyticsTablesResource)
    check_keys = {k.name: k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert check_keys["failure_rate_under_threshold"] == "calls"


def test_a_day_materializes_the_tables_with_schema_and_row_counts(
    store_setup: StoreSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_CACHE_DIR", str(tmp_path / "run-cache"))  # S3: tables beside it
    monkeypatch.delenv("CALLPIPE_ANALYTICS_DB", raising=False)
    monkeypatch.setenv("CALLPIPE_MAX_FAILURE_RATE", "0.5")
    docs = _seed(store_setup, processed=4, failed=1)
    result = _materialize(store_setup, AnalyticsTablesResource())
    assert result.success
    meta = _table_metadata(result)
    expected = _expected(docs)
    assert expected["turns"] > 0 and expected["entities"] > 0
    _assert_described(meta, expected)
    assert (meta["calls"]["processed"], meta["calls"]["failed"]) == (4, 1)
    reader = open_analytics_store(read_only=True, store=store_setup.store)
    try:
        assert _store_counts(reader, [d.recording_id for d in docs]) == expected
        root = Path(reader.root)  # type: ignore[attr-defined]
    finally:
        reader.close()
    assert root.is_relative_to(tmp_path)  # never the working directory, nor the home cache
    for table in ("calls", "turns", "entities"):
        day_file = root / table / f"call_date={KEY}" / "part.parquet"
        names = [r[0] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{day_file}')").fetchall()]
        assert names == [name for name, _, _ in TABLES[table]]
        if store_setup.resource.backend == "local":
            assert meta[table]["location"] == f"{root / table}/"
    summary = result.asset_value("daily_call_summary")
    assert summary["recordings"] == 5 and summary["failed"] == 1


@pytest.mark.parametrize("store_setup", ["s3"], indirect=True)
def test_with_s3_the_day_files_are_in_the_bucket_hive_partitioned(
    store_setup: StoreSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_CACHE_DIR", str(tmp_path / "run-cache"))
    monkeypatch.delenv("CALLPIPE_ANALYTICS_DB", raising=False)
    docs = _seed(store_setup, processed=3, failed=0)
    result = _materialize(store_setup, AnalyticsTablesResource())
    assert result.success
    bucket, client = store_setup.store.bucket, store_setup.store.client  # type: ignore[attr-defined]
    prefix = "callpipe/test/analytics/"
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    keys = sorted(item["Key"] for item in listed)
    assert keys == sorted(f"{prefix}{t}/call_date={KEY}/part.parquet" for t in ("calls", "entities", "turns"))
    meta = _table_metadata(result)
    assert meta["calls"]["location"] == f"s3://{bucket}/{prefix}calls/"
    # What a BI engine does where the files lie: DuckDB over the hive layout, the partition
    # column from the key (downloaded as they are: no network extension here).
    copy = tmp_path / "bucket"
    for key in keys:
        target = copy / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    rows = duckdb.sql(
        "SELECT recording_id, CAST(call_date AS VARCHAR)"
        f" FROM read_parquet('{copy}/{prefix}calls/*/*.parquet', hive_partitioning=true)"
        " ORDER BY recording_id"
    ).fetchall()
    assert rows == sorted((d.recording_id, KEY) for d in docs)
    (turns,) = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{copy}/{prefix}turns/*/*.parquet', hive_partitioning=true)"
        f" WHERE call_date = '{KEY}'"
    ).fetchall()
    assert turns[0] == meta["turns"]["dagster/row_count"] == _expected(docs)["turns"]


def test_postgresql_tables_through_the_resource(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    setup = local_setup(tmp_path / "recordings")
    monkeypatch.setenv("CALLPIPE_MAX_FAILURE_RATE", "0.5")
    monkeypatch.setenv("CALLPIPE_ANALYTICS_DB", pg_url)
    docs = _seed(setup, processed=3, failed=1)
    result = _materialize(setup, AnalyticsTablesResource(url=dg.EnvVar("CALLPIPE_ANALYTICS_DB")))
    assert result.success
    meta = _table_metadata(result)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        counts = {}
        for table in TABLES:
            cur.execute(f"SELECT count(*) FROM {table} WHERE call_date = %s", [KEY])
            counts[table] = cur.fetchone()[0]
    conn.close()
    assert counts == _expected(docs)
    _assert_described(meta, counts)
    assert {m["analytics_store"] for m in meta.values()} == {"PostgresAnalyticsStore"}
    assert meta["calls"]["location"] == "postgresql:calls"  # the DSN is not shown
    assert not (tmp_path / "analytics").exists()  # nothing embedded written beside the store


def test_failure_rate_check_on_calls_blocks_the_summary_not_the_tables(tmp_path: Path) -> None:
    setup = local_setup(tmp_path / "recordings")
    docs = _seed(setup, processed=2, failed=1)  # one of three failed: over the default 10%
    result = _materialize(setup, AnalyticsTablesResource(url=str(tmp_path / "tables")))
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    evaluation = evaluations["failure_rate_under_threshold"]
    assert evaluation.asset_key == dg.AssetKey("calls") and evaluation.passed is False
    assert evaluation.metadata["failed"].value == 1 and evaluation.metadata["processed"].value == 2
    assert list(evaluation.metadata["failures"].value) == [docs[2].recording_id]
    assert sorted(_table_metadata(result)) == sorted(TABLES)  # the failed call is in the tables
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not result.success and "daily_call_summary" not in materialized
    assert (tmp_path / "tables" / "calls" / f"call_date={KEY}" / "part.parquet").is_file()
