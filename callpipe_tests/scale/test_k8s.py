"""The Kubernetes deployment (dagster-k8s 0.29.27) checked against dagster-k8s itself, no cluster:
the instance YAML against ``K8sRunLauncher``'s schema, the GPU op tag against the ``dagster-k8s/config``
schema, and the step Job manifests built the way ``k8s_job_executor`` builds them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.dagster_run import DagsterRun
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import construct_dagster_k8s_job, get_k8s_job_name, get_user_defined_k8s_config
from kubernetes.client import ApiClient

from callpipe.defs.executors import GPU_OP_TAGS, GPU_STEP_K8S_CONFIG, select_executor
from callpipe_tests.scale.conftest import REPO_ROOT

K8S_YAML = REPO_ROOT / "scripts" / "deploy" / "k8s" / "dagster.yaml"
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: test, user: {token: not-a-real-token}}]
contexts: [{name: test, context: {cluster: test, user: test, namespace: callpipe}}]
current-context: test
"""


@pytest.fixture
def instance_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://dagster@db:5432/dagster")
    (tmp_path / "dagster.yaml").write_text(K8S_YAML.read_text())
    validated, _ = dagster_instance_config(str(tmp_path))  # Dagster's instance schema
    assert validated["run_launcher"]["class"] == "K8sRunLauncher"
    return yaml.safe_load(K8S_YAML.read_text())


@pytest.fixture
def launcher(instance_yaml: dict[str, Any], tmp_path: Path) -> K8sRunLauncher:
    """The run launcher the YAML describes, pointed at a kubeconfig instead of in-cluster config
    (nothing is contacted: step Jobs are only built)."""
    config = dict(instance_yaml["run_launcher"]["config"])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    config.update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    processed = process_config(K8sRunLauncher.config_type(), config)
    assert processed.success, processed.errors
    return K8sRunLauncher.from_config_value(None, processed.value)


def test_instance_yaml_validates_against_the_k8s_run_launcher_schema(instance_yaml: dict[str, Any]) -> None:
    config = instance_yaml["run_launcher"]["config"]
    result = process_config(K8sRunLauncher.config_type(), config)
    assert result.success, result.errors
    assert instance_yaml["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert "CALLPIPE_EXECUTOR=k8s" in config["env_vars"]
    broken = {**config, "run_k8s_config": {"container_conf": {}}}  # a typo is caught
    assert not process_config(K8sRunLauncher.config_type(), broken).success


def test_k8s_mode_selects_the_k8s_job_executor() -> None:
    executor = select_executor({"CALLPIPE_EXECUTOR": "k8s"})
    assert executor is not None and executor.name == "k8s"
    per_step = {"per_step_k8s_config": {"transcribe_chunk": GPU_STEP_K8S_CONFIG}}  # the documented override
    assert process_config(executor.config_schema.config_type, per_step).success


def _step_job(launcher: K8sRunLauncher, step_key: str, tags: dict[str, str]) -> dict[str, Any]:
    """The Kubernetes Job ``k8s_job_executor`` would create for a step (K8sStepHandler.launch_step)."""
    run = DagsterRun(job_name="process_call_date", run_id=str(uuid.uuid4()))
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False)
    context = context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags)))
    name = f"dagster-step-{get_k8s_job_name(run.run_id, step_key)}"
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config("ghcr.io/example/callpipe:test", launcher),
        args=["dagster", "api", "execute_step"],
        job_name=name,
        pod_name=name,
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/op": step_key},
    )
    return ApiClient().sanitize_for_serialization(job)


def test_stt_step_requests_a_gpu_and_other_steps_stay_on_cpu_nodes(launcher: K8sRunLauncher) -> None:
    assert get_user_defined_k8s_config(GPU_OP_TAGS).container_config  # the tag passes dagster-k8s's schema
    stt = _step_job(launcher, "transcripts", GPU_OP_TAGS)["spec"]["template"]["spec"]
    cpu = _step_job(launcher, "call_sentiment", {})["spec"]["template"]["spec"]

    (stt_container,) = stt["containers"]
    assert stt_container["resources"]["limits"] == {"nvidia.com/gpu": "1", "memory": "12Gi"}
    assert stt_container["resources"]["requests"] == {"cpu": "2", "memory": "6Gi"}
    assert stt["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in stt["tolerations"]

    (cpu_container,) = cpu["containers"]
    assert "nvidia.com/gpu" not in json.dumps(cpu)  # no GPU, no toleration of the GPU nodes' taint
    assert cpu_container["resources"]["requests"] == {"cpu": "1", "memory": "3Gi"}
    assert not cpu.get("nodeSelector") and not cpu.get("tolerations")

    for container in (stt_container, cpu_container):  # both get the deployment's environment
        assert {"name": "CALLPIPE_EXECUTOR", "value": "k8s"} in container["env"]
        assert {"secretRef": {"name": "callpipe-env"}} in container["envFrom"]


def test_the_transcripts_asset_carries_the_gpu_op_tags() -> None:
    from callpipe.defs.launch import process_call_date_job

    (stt,) = [op for op in process_call_date_job().graph.iterate_op_defs() if op.name == "transcribe_chunk"]
    tags = stt.tags
    assert {k: tags.get(k) for k in GPU_OP_TAGS} == GPU_OP_TAGS
