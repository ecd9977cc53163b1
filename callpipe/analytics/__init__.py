"""Call analytics tables (``calls``, ``turns``, ``entities``): written a day at a time by the
``calls``/``turns``/``entities``/``day_aggregates`` assets, read by the HTTP API, the web UI and BI tools.

Embedded Parquet + DuckDB by default, PostgreSQL with ``CALLPIPE_ANALYTICS_DB=postgresql://...``
(:mod:`callpipe.analytics.store`). Importing this package opens nothing and reads no setting.
"""

from callpipe.analytics.columns import (
    CALLS_COLUMNS,
    ENTITIES_COLUMNS,
    LIST_COLUMNS,
    TABLES,
    TURNS_COLUMNS,
    Column,
    normalize_text,
    rows_for_day,
)
from callpipe.analytics.queries import AnalyticsQueryError
from callpipe.analytics.store import (
    ANALYTICS_ENV,
    AnalyticsConfigError,
    AnalyticsStore,
    day_row_counts,
    default_root,
    open_analytics_store,
    remaining_recordings,
    remove_recordings,
    store_local_root,
    table_location,
)

__all__ = [
    "ANALYTICS_ENV",
    "CALLS_COLUMNS",
    "ENTITIES_COLUMNS",
    "LIST_COLUMNS",
    "TABLES",
    "TURNS_COLUMNS",
    "AnalyticsConfigError",
    "AnalyticsQueryError",
    "AnalyticsStore",
    "Column",
    "day_row_counts",
    "default_root",
    "normalize_text",
    "open_analytics_store",
    "remaining_recordings",
    "remove_recordings",
    "rows_for_day",
    "store_local_root",
    "table_location",
]
