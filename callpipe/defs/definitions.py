"""The Dagster code location: ``dagster dev`` from the repo root loads ``defs`` (see workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from callpipe.defs.assets import ALL_ASSETS
from callpipe.defs.checks import ALL_CHECKS
from callpipe.defs.jobs import process_call_date
from callpipe.defs.resources import default_resources
from callpipe.defs.schedules import nightly_processing_schedule
from callpipe.defs.sensors import reprocessing_sensor, unprocessed_recordings_sensor

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[process_call_date],
    sensors=[unprocessed_recordings_sensor, reprocessing_sensor],
    schedules=[nightly_processing_schedule],
    resources=default_resources(),
)
