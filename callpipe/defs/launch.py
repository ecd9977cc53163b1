"""Launching a run of ``process_call_date`` for one call-date partition and reading its outputs.

:func:`execute_partition` runs the job with the executor :mod:`callpipe.defs.executors` selects
(in this process by default; through Celery workers or Kubernetes Jobs otherwise) and
:func:`step_report` reads where and how long each step ran from the run's event log. It sits
above :mod:`callpipe.defs.definitions`, which it imports to rebuild the job.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from callpipe.defs.definitions import build_defs
from callpipe.deploy import executor_mode


def process_call_date_job() -> dg.JobDefinition:
    """``process_call_date`` with the executor the environment selects now; the target of
    :func:`reconstructable` that Celery workers and step pods import to rebuild the job."""
    return build_defs().resolve_job_def("process_call_date")


def _interval_to_next_pending_claim_check(self: Any) -> float:
    """Seconds until the next pool claim is due (never negative): what the in-process loop sleeps."""
    if not self._pending_claims:
        return 0.0
    now = time.time()
    return max(0.0, min((due - now for due in self._pending_timeouts.values()), default=0.0))


def sleep_while_blocked_on_pools() -> None:
    """Make the in-process executor sleep while a step waits for a pool slot, instead of spinning.

    Dagster 1.13's ``InstanceConcurrencyContext.interval_to_next_pending_claim_check`` returns
    ``min([0, *waits])``, never above 0, so the executor's ``sleep_til_ready`` never sleeps and a
    run blocked on the ``gpu`` pool burns a core for as long as it waits (it polls the claim only
    every 1-15 s anyway). This replaces it, in this process, with the time left until that next
    poll (the busy wait noted, unmerged, in dagster-io/dagster pull request 20367). Idempotent;
    called by :func:`execute_partition` at run time, never at import.
    """
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    InstanceConcurrencyContext.interval_to_next_pending_claim_check = _interval_to_next_pending_claim_check


@dataclass
class PartitionRun:
    """One finished run of a call-date partition: its id, success and the asset values asked for
    (``None`` where the step failed or did not run)."""

    run_id: str
    success: bool
    values: dict[str, Any] = field(default_factory=dict)


def execute_partition(
    partition_key: str,
    *,
    instance: dg.DagsterInstance,
    tags: Mapping[str, str],
    run_config: Mapping[str, Any],
    outputs: tuple[str, ...] = ("recordings", "call_analytics"),
    environ: Mapping[str, str] | None = None,
) -> PartitionRun:
    """Run ``process_call_date`` for one partition with the configured executor and wait for it.

    The default mode executes in this process, its step outputs kept in this run's memory: a
    filesystem IO manager keys them by asset and partition only, so a run of the same day at the
    same time (a daemon-launched one, another terminal) would overwrite them mid-run. The others
    launch the reconstructable job through ``execute_job``, whose executor hands the steps to
    Celery workers or Kubernetes Jobs.
    """
    if executor_mode(environ) == "default":
        sleep_while_blocked_on_pools()
        local = process_call_date_job().execute_in_process(
            partition_key=partition_key,
            instance=instance,
            tags=dict(tags),
            run_config=dict(run_config),
            raise_on_error=False,
            resources={"io_manager": dg.mem_io_manager},
        )
        values = {name: local.asset_value(name) if local.is_node_success(name) else None for name in outputs}
        return PartitionRun(local.run_id, local.success, values)
    result = dg.execute_job(
        dg.reconstructable(process_call_date_job),
        instance=instance,
        run_config=dict(run_config),
        tags={**tags, "dagster/partition": partition_key},
        raise_on_error=False,
    )
    # Steps ran elsewhere: read what this run materialized back through the IO manager.
    defs = build_defs()
    previous = logging.root.manager.disable
    logging.disable(logging.DEBUG)  # the loader logs each file read at DEBUG to the console
    try:
        values = {
            name: defs.load_asset_value(name, instance=instance, partition_key=partition_key)
            if result.is_node_success(name)
            else None
            for name in outputs
        }
    finally:
        logging.disable(previous)
    return PartitionRun(result.run_id, result.success, values)


_SUBMITTED = re.compile(r'^Submitting celery task for step "(?P<step>[^"]+)" to queue "(?P<queue>[^"]+)"')
_STEP_FIELDS = ("queue", "worker", "seconds", "started", "finished")


def step_report(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    """Per step of a finished run, from its event log: ``seconds`` (start to success or failure),
    ``started`` and ``finished`` (Unix times), and under Celery the ``queue`` it was sent to and
    the ``worker`` (``name@host``) that ran it."""
    report: dict[str, dict[str, Any]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        step = report.setdefault(event.step_key, dict.fromkeys(_STEP_FIELDS))
        kind = event.event_type_value
        if kind == "STEP_START":
            step["started"] = record.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and step["started"] is not None:
            step["finished"] = record.timestamp
            step["seconds"] = round(record.timestamp - step["started"], 3)
        elif kind == "ENGINE_EVENT":
            submitted = _SUBMITTED.match(event.message or "")
            if submitted:
                step["queue"] = submitted["queue"]
            metadata = event.engine_event_data.metadata if event.engine_event_data else {}
            worker = metadata.get("Celery worker")
            if worker is not None:
                step["worker"] = getattr(worker, "value", worker)
    return report
