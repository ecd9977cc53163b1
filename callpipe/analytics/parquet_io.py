"""Small helpers of the embedded store's Parquet files (:mod:`callpipe.analytics.duck`): a DuckDB
connection with bounded memory, rows as dicts, and the atomic install of day files written under
temporary names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

from callpipe.analytics.queries import sql_type


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection: one thread, 256 MB, UTC."""
    conn = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": "256MB"})
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def fetch_rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The result of ``cursor`` as one dict per row."""
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def array_type(portable: str) -> str:
    """The DuckDB list type of a portable column type (for ``unnest`` inserts)."""
    return sql_type(portable, "duckdb") + "[]"


def quote(path: Path) -> str:
    """A path as the inside of a SQL string literal."""
    return str(path).replace("'", "''")


def install(tmps: list[tuple[Path, Path]]) -> None:
    """Rename each ``(temporary, target)`` file over its target: each rename atomic (a reader
    holding the old file keeps the old inode) and made durable."""
    for tmp, target in tmps:
        os.replace(tmp, target)
        fsync_dir(target.parent)


def discard(tmps: list[tuple[Path, Path]]) -> None:
    """Remove the temporary files of ``tmps`` that were not installed."""
    for tmp, _ in tmps:
        tmp.unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
