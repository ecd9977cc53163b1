"""Dagster shell of callpipe: partitions, resources, assets, checks, sensors, schedules.

Only wiring lives here; the stage logic is in :mod:`callpipe.stage_runner` and the stage packages.
"""
