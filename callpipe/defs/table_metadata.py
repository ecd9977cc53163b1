"""Dagster metadata for tables: the analytics tables' column schema and small result tables that
the UI renders (rather than Markdown text)."""

from typing import Any

import dagster as dg

from callpipe.analytics import Column

_DAGSTER_TYPES = {
    "TEXT": "string",
    "DOUBLE": "float",
    "BIGINT": "int",
    "BOOLEAN": "bool",
    "TIMESTAMPTZ": "datetime",
    "DATE": "date",
    "TEXT[]": "list[string]",
    "JSON": "json",
}


def table_schema(columns: list[Column]) -> dg.TableSchema:
    """Dagster's column schema of an analytics table (:mod:`callpipe.analytics.columns`)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, _DAGSTER_TYPES.get(kind, kind), description)
            for name, kind, description in columns
        ]
    )


def metadata_table(rows: list[dict[str, Any]]) -> dg.TableMetadataValue:
    """Rows as a table the Dagster UI renders (values the UI cannot show become text)."""
    if not rows:
        return dg.MetadataValue.table([], schema=dg.TableSchema(columns=[dg.TableColumn("none")]))
    names = list(rows[0])
    records = [
        dg.TableRecord(
            {k: v if v is None or isinstance(v, str | int | float | bool) else str(v) for k, v in row.items()}
        )
        for row in rows
    ]
    types = {
        k: "float"
        if isinstance(v, float)
        else "int"
        if isinstance(v, int) and not isinstance(v, bool)
        else "string"
        for k, v in rows[0].items()
    }
    return dg.MetadataValue.table(
        records, schema=dg.TableSchema(columns=[dg.TableColumn(n, types[n]) for n in names])
    )
