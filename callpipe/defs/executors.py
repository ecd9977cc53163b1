"""Executor selection by configuration: in process / multiprocess, Celery queues, Kubernetes Jobs.

``CALLPIPE_EXECUTOR`` (see :mod:`callpipe.deploy`) picks the executor of ``process_call_date``:

- ``default``: Dagster's multiprocess executor for runs the daemon launches; ``callpipe batch``
  runs in its own process.
- ``celery``: ``dagster-celery``; each step is a Celery task. STT chunk steps (op
  ``transcribe_chunk``, tag ``dagster-celery/queue: gpu``) go to the ``gpu`` queue, the rest to
  the default ``dagster`` queue.
- ``k8s``: ``dagster-k8s`` ``k8s_job_executor``; each step is a Kubernetes Job, and the
  ``dagster-k8s/config`` op tag of STT chunk steps (:data:`GPU_OP_TAGS`) asks for one GPU.

A day's STT is fanned out in chunks (``transcripts`` is a graph of a planning op, one mapped
``transcribe_chunk`` step per chunk and a merge). The instance's ``gpu`` pool caps how many chunk
steps run at once: ``dagster.yaml`` gives every pool 1 (one GPU on one machine); with N GPU
workers or GPU nodes, raise it to N once per instance (:func:`set_gpu_slots`, or
``dagster instance concurrency set gpu N``).

Outside the default mode, steps run in other processes or machines, so their outputs (small
tables) must be readable by all of them: with an S3 recording store they go to
``s3://$S3_BUCKET/$S3_PREFIX/dagster-io`` (``S3PickleIOManager``); with a local store, to
``$DAGSTER_HOME/storage``, which every worker must then share.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from callpipe.deploy import DeploymentConfigError, celery_urls, executor_mode

GPU_QUEUE = "gpu"
"""Celery queue of the STT steps; a worker started with ``-q gpu`` on a GPU machine serves it."""
GPU_POOL = "gpu"
"""Dagster concurrency pool of the STT chunk steps: its limit is how many run at once."""
GPU_STEP_K8S_CONFIG: dict[str, Any] = {
    "container_config": {
        "resources": {
            "requests": {"cpu": "2", "memory": "6Gi"},
            "limits": {"nvidia.com/gpu": "1", "memory": "12Gi"},
        }
    },
    "pod_spec_config": {
        "node_selector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}
"""Kubernetes settings of an STT step pod: one GPU, on a node labelled by NVIDIA GPU feature
discovery, tolerating the GPU nodes' taint. Other steps lack the toleration, so they never land
on (tainted) GPU nodes. Override per cluster with ``per_step_k8s_config: {transcribe_chunk: ...}``
in the executor config (keyed by op name)."""
GPU_OP_TAGS: dict[str, str] = {
    "dagster-celery/queue": GPU_QUEUE,
    "dagster-k8s/config": json.dumps(GPU_STEP_K8S_CONFIG, sort_keys=True),
}
"""Op tags for GPU steps: the Celery queue and the Kubernetes pod settings."""


def select_executor(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """The executor ``CALLPIPE_EXECUTOR`` names; ``None`` leaves Dagster's default."""
    mode = executor_mode(environ)
    try:
        if mode == "celery":
            from dagster_celery import celery_executor

            return celery_executor.configured(celery_urls(environ), name="celery")
        if mode == "k8s":
            from dagster_k8s import k8s_job_executor

            return k8s_job_executor
    except ImportError as exc:
        message = f"CALLPIPE_EXECUTOR={mode} needs {exc.name}: install callpipe[scale]"
        raise DeploymentConfigError(message) from exc
    return None


def scale_resources(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An S3 IO manager when steps run apart (celery, k8s) and the recording store is on S3."""
    env = os.environ if environ is None else environ
    backend = (env.get("STORAGE_BACKEND") or "local").strip().lower()
    if executor_mode(env) == "default" or backend not in ("s3", "both") or not env.get("S3_BUCKET"):
        return {}
    from dagster_aws.s3 import S3PickleIOManager, S3Resource

    prefix = "/".join(p for p in ((env.get("S3_PREFIX") or "").strip("/"), "dagster-io") if p)
    return {
        "io_manager": S3PickleIOManager(
            s3_resource=S3Resource(
                region_name=env.get("S3_REGION") or "us-east-1",
                endpoint_url=env.get("S3_ENDPOINT_URL") or None,
                max_attempts=3,
            ),
            s3_bucket=env["S3_BUCKET"],
            s3_prefix=prefix,
        )
    }


def set_gpu_slots(instance: dg.DagsterInstance, slots: int) -> None:
    """Let ``slots`` STT chunk steps run at once on ``instance`` (one per GPU worker or GPU node);
    the same as ``dagster instance concurrency set gpu N``, kept in the instance's storage."""
    if slots < 1:
        raise ValueError(f"gpu slots must be at least 1, got {slots}")
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, slots)


def process_call_date_job() -> dg.JobDefinition:
    """``process_call_date`` with the executor the environment selects now; the target of
    :func:`reconstructable` that Celery workers and step pods import to rebuild the job."""
    from callpipe.defs.definitions import build_defs

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
    from callpipe.defs.definitions import build_defs

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
