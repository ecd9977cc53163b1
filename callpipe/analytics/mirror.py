"""The bucket copy of the embedded tables when the recording store is S3: each day file is put
to ``s3://BUCKET/PREFIX/analytics/TABLE/call_date=YYYY-MM-DD/part.parquet`` after it is
committed locally (hive-partitioned, so Athena, Trino, Spark or DuckDB read it where it lies),
through the recording store's own S3 client (no other credentials)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class S3Mirror:
    """Puts and deletes day files under ``key_prefix`` in ``bucket``."""

    def __init__(
        self, client: Any, bucket: str, key_prefix: str, extra: dict[str, str] | None = None
    ) -> None:
        self.client = client
        self.extra = dict(extra or {})  # the store's encryption-at-rest arguments
        self.bucket = bucket
        self.key_prefix = key_prefix.strip("/")

    def key(self, table: str, day: str) -> str:
        """The object key of one table's day file."""
        return f"{self.key_prefix}/{table}/call_date={day}/part.parquet"

    def put(self, table: str, day: str, path: Path) -> None:
        """Upload one committed day file (replacing the previous object: readers see old or new)."""
        with open(path, "rb") as handle:
            self.client.put_object(
                Bucket=self.bucket, Key=self.key(table, day), Body=handle.read(), **self.extra
            )
