"""The Dagster code location: ``dagster dev`` from the repo root loads ``defs`` (see workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from callpipe.defs.assets import ALL_ASSETS
from callpipe.defs.checks import ALL_CHECKS
from callpipe.defs.executors import scale_resources, select_executor
from callpipe.defs.jobs import process_call_date
from callpipe.defs.resources import default_resources
from callpipe.defs.retention_job import apply_retention_job, retention_schedule
from callpipe.defs.schedules import nightly_processing_schedule
from callpipe.defs.sensors import reprocessing_sensor, unprocessed_recordings_sensor


def build_defs() -> dg.Definitions:
    """The definitions, with the executor and IO manager the environment selects now
    (``CALLPIPE_EXECUTOR``, see :mod:`callpipe.defs.executors`)."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[process_call_date, apply_retention_job],
        sensors=[unprocessed_recordings_sensor, reprocessing_sensor],
        schedules=[nightly_processing_schedule(), retention_schedule()],
        resources={**default_resources(), **scale_resources()},
        executor=select_executor(),
    )


defs = build_defs()
