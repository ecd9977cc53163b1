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
import os
from collections.abc import Mapping
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
