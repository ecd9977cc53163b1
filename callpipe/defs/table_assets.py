"""The analytics tables as day-partitioned assets: ``calls``, ``turns``, ``entities`` and
``day_aggregates``, written in one step after ``call_analytics`` through
:class:`~callpipe.defs.resources.AnalyticsTablesResource`, then the ``daily_call_summary`` that
reads them. Dagster's lineage then shows the tables a BI tool reads, each with its column schema
and, per materialized day, its row count as the store holds it.

Where they lie follows the stores (see :mod:`callpipe.analytics.store`): embedded, Parquet day
files ``TABLE/call_date=YYYY-MM-DD/part.parquet`` beside the local recording store, also put to
``s3://BUCKET/PREFIX/analytics/`` when the recordings are on S3; or PostgreSQL tables.
"""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from callpipe.analytics import (
    CALLS_COLUMNS,
    ENTITIES_COLUMNS,
    TURNS_COLUMNS,
    Column,
    day_row_counts,
    rows_for_day,
    table_location,
)
from callpipe.defs.partitions import call_date_partitions, call_timezone, partition_window
from callpipe.defs.resources import AnalyticsTablesResource, RecordingStoreResource
from callpipe.defs.table_metadata import metadata_table, table_schema
from callpipe.summary import day_documents

DAY_AGGREGATES_COLUMNS: list[Column] = [
    ("call_date", "DATE", "Call date of the aggregate (one row per day, primary key)."),
    (
        "doc",
        "JSON",
        "The day's counts by status, WER means live/offline/measured, talk and silence seconds, "
        "corrections, sentiment, intent and topic counts, per-agent sums, slowest calls and "
        "failures (callpipe.analytics.aggregates.day_aggregate).",
    ),
]
"""The ``day_aggregates`` table: what the dashboard and the day summary read instead of the calls."""

TABLE_COLUMNS: dict[str, list[Column]] = {
    "calls": CALLS_COLUMNS,
    "turns": TURNS_COLUMNS,
    "entities": ENTITIES_COLUMNS,
    "day_aggregates": DAY_AGGREGATES_COLUMNS,
}
_DESCRIPTIONS = {
    "calls": "One row per recording of the day, whatever its status (recording_id is its key).",
    "turns": "One row per turn of each call of the day, in order, with the turn's sentiment.",
    "entities": "One row per entity found in a call of the day (values masked).",
    "day_aggregates": "The day's aggregate of its calls, read by the dashboard and the day summary.",
}
_DEPS: dict[str, list[str]] = {
    "calls": ["call_analytics"],
    "turns": ["call_analytics"],
    "entities": ["call_analytics"],
    "day_aggregates": ["calls"],
}
_KINDS = {"day_aggregates": {"sqlite", "postgres"}}


def _spec(table: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        table,
        deps=_DEPS[table],
        description=_DESCRIPTIONS[table],
        group_name="tables",
        kinds=_KINDS.get(table, {"parquet", "duckdb", "postgres"}),
        metadata={"dagster/column_schema": table_schema(TABLE_COLUMNS[table]), "dagster/table_name": table},
    )


TABLE_SPECS = [_spec(table) for table in TABLE_COLUMNS]


@dg.multi_asset(
    name="analytics_tables",
    specs=TABLE_SPECS,
    partitions_def=call_date_partitions,
    code_version="1",
)
def analytics_tables(
    context: dg.AssetExecutionContext, store: RecordingStoreResource, tables: AnalyticsTablesResource
) -> Iterator[dg.MaterializeResult]:
    """Make the day's rows of the tables those of the day's documents now (every recording of the
    day, whatever its status; the day's previous rows replaced, erased calls left out), then
    report each table's rows for the day as counted in the store."""
    day = context.partition_key
    backend = store.get_store()
    started = time.perf_counter()
    docs, unreadable = day_documents(backend, *partition_window(day))
    calls, turns, entities = rows_for_day(docs, timezone=call_timezone())
    writer = tables.open(backend)
    try:
        writer.replace_day(day, calls, turns, entities)
        seconds = round(time.perf_counter() - started, 3)
        counts = {**day_row_counts(writer, day), "day_aggregates": 1}
        summary = writer.day_summary(day)
        locations = {table: table_location(writer, table) for table in TABLE_COLUMNS}
        backend_name = type(writer).__name__
    finally:
        writer.close()
    extra: dict[str, dict[str, Any]] = {
        "calls": {
            "processed": summary["processed"],
            "pending": summary["pending"],
            "failed": summary["failed"],
            "unreadable": len(unreadable),
            "write_seconds": seconds,
        },
        "day_aggregates": {
            "recordings": summary["recordings"],
            "failures": metadata_table(summary["failures"]),
        },
    }
    for table, columns in TABLE_COLUMNS.items():
        yield dg.MaterializeResult(
            asset_key=table,
            metadata={
                "dagster/row_count": counts[table],
                "dagster/partition_row_count": counts[table],
                "dagster/column_schema": table_schema(columns),
                "dagster/table_name": table,
                "location": locations[table],
                "analytics_store": backend_name,
                **extra.get(table, {}),
            },
        )


@dg.asset(
    partitions_def=call_date_partitions,
    group_name="reporting",
    code_version="3",
    kinds={"python"},
    deps=["calls", "day_aggregates"],
)
def daily_call_summary(
    context: dg.AssetExecutionContext, store: RecordingStoreResource, tables: AnalyticsTablesResource
) -> dict[str, Any]:
    """Counts, WER before/after, sentiment and intent distributions and slowest calls of the day,
    read from the ``day_aggregates`` table."""
    reader = tables.open(store.get_store(), read_only=True)
    try:
        summary = reader.day_summary(context.partition_key)
    finally:
        reader.close()
    scalars = {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    context.add_output_metadata(
        {
            **scalars,
            "sentiment_distribution": metadata_table(_shares(summary["sentiment"])),
            "intent_distribution": metadata_table(_shares(summary["intents"])),
            "slowest_recordings": metadata_table(summary["slowest"]),
            "failures": metadata_table(summary["failures"]),
        }
    )
    return {
        **summary,
        "sentiment": {r["label"]: r["calls"] for r in summary["sentiment"]},
        "intents": {r["intent"]: r["calls"] for r in summary["intents"]},
    }


def _shares(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    total = sum(r["calls"] for r in rows) or 1
    return [{**r, "share": f"{100 * r['calls'] / total:.0f}%"} for r in rows]
