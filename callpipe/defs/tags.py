"""Run tags callpipe writes when it launches a run and the assets read back (no Dagster import)."""

from __future__ import annotations

ONLY_TAG = "callpipe/recording_ids"
"""Run tag restricting a run to these recording ids (comma-separated); used by ``--mode single``."""
CONCURRENCY_TAG = "callpipe/max_concurrent"
"""Run tag overriding ``BATCH_MAX_CONCURRENT`` for one run (``callpipe batch --concurrent N``)."""
PROCESS_CALL_DATE = "process_call_date"
"""Name of the job that processes one call date (:mod:`callpipe.defs.jobs`)."""
