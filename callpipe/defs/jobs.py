"""The job that materializes a whole call-date partition of the graph."""

from __future__ import annotations

import dagster as dg

from callpipe.defs.assets import ALL_ASSETS
from callpipe.defs.tags import PROCESS_CALL_DATE

process_call_date = dg.define_asset_job(
    name=PROCESS_CALL_DATE,
    selection=dg.AssetSelection.assets(*ALL_ASSETS),
    description="Every offline stage for the recordings of one call date.",
)
