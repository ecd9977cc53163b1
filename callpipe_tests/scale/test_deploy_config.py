"""Instance storage and executor selection from the environment (no services needed)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from callpipe.defs.executors import GPU_OP_TAGS, select_executor
from callpipe.deploy import DeploymentConfigError, celery_urls, executor_mode, sync_instance_config

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "dagster.yaml"
SECRET = "s3cr3t-Pa55"


def _load(home: Path) -> dict:
    return yaml.safe_load((home / "dagster.yaml").read_text())


def test_sqlite_by_default_copies_the_template_verbatim(tmp_path: Path) -> None:
    sync_instance_config(tmp_path, TEMPLATE, environ={})
    assert (tmp_path / "dagster.yaml").read_text() == TEMPLATE.read_text()


def test_postgres_url_is_an_env_reference_and_validates(tmp_path: Path) -> None:
    env = {"DAGSTER_PG_URL": f"postgresql+psycopg2://callpipe:{SECRET}@db:5432/dagster"}
    sync_instance_config(tmp_path, TEMPLATE, environ=env)
    text = (tmp_path / "dagster.yaml").read_text()
    assert SECRET not in text and "db:5432" not in text
    config = _load(tmp_path)
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert config["run_coordinator"] == yaml.safe_load(TEMPLATE.read_text())["run_coordinator"]
    validated, _ = dagster_instance_config(str(tmp_path))  # Dagster's own schema accepts it
    assert "postgres" in validated["storage"]


def test_postgres_fields_reference_only_the_variables_set(tmp_path: Path) -> None:
    env = {
        "DAGSTER_PG_HOST": "db",
        "DAGSTER_PG_USER": "callpipe",
        "DAGSTER_PG_PASSWORD": SECRET,
        "DAGSTER_PG_DB": "dagster",
    }
    sync_instance_config(tmp_path, TEMPLATE, environ=env)
    assert SECRET not in (tmp_path / "dagster.yaml").read_text()
    db = _load(tmp_path)["storage"]["postgres"]["postgres_db"]
    assert db == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "scheme": "postgresql+psycopg2",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        validated, _ = dagster_instance_config(str(tmp_path))
    assert validated["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


def test_a_bare_postgresql_url_names_the_driver_to_use(tmp_path: Path) -> None:
    # SQLAlchemy 2.1 reads postgresql:// as psycopg 3, which dagster-postgres does not install.
    with pytest.raises(DeploymentConfigError, match=r"start it with postgresql\+psycopg2://"):
        sync_instance_config(tmp_path, TEMPLATE, environ={"DAGSTER_PG_URL": "postgresql://u@db/dagster"})
    assert not (tmp_path / "dagster.yaml").exists()


def test_unsetting_postgres_returns_to_sqlite_and_keeps_the_rest(tmp_path: Path) -> None:
    sync_instance_config(tmp_path, TEMPLATE, environ={"DAGSTER_PG_URL": "postgresql+psycopg2://x@y/z"})
    sync_instance_config(tmp_path, TEMPLATE, environ={})
    config = _load(tmp_path)
    assert "storage" not in config
    assert config["concurrency"] == yaml.safe_load(TEMPLATE.read_text())["concurrency"]
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"


def test_incomplete_or_conflicting_postgres_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DeploymentConfigError, match="DAGSTER_PG_USER, DAGSTER_PG_DB"):
        sync_instance_config(tmp_path, TEMPLATE, environ={"DAGSTER_PG_HOST": "db"})
    (tmp_path / "dagster.yaml").write_text("storage:\n  sqlite:\n    base_dir: /data/dagster\n")
    with pytest.raises(DeploymentConfigError, match="sets storage itself"):
        sync_instance_config(tmp_path, TEMPLATE, environ={"DAGSTER_PG_URL": "postgresql+psycopg2://x@y/z"})
    assert "sqlite" in _load(tmp_path)["storage"]  # left as written


def test_executor_mode_selects_the_executor() -> None:
    assert executor_mode({}) == "default" and select_executor({}) is None
    celery = select_executor({"CALLPIPE_EXECUTOR": "celery"})
    assert celery is not None and celery.name == "celery"
    k8s = select_executor({"CALLPIPE_EXECUTOR": "K8S"})
    assert k8s is not None and k8s.name == "k8s"
    with pytest.raises(DeploymentConfigError, match="expected one of default, celery, k8s"):
        executor_mode({"CALLPIPE_EXECUTOR": "dask"})


def test_celery_urls_reference_the_environment_or_default_to_local_redis() -> None:
    assert celery_urls({}) == {"broker": "redis://127.0.0.1:6379/0", "backend": "redis://127.0.0.1:6379/0"}
    urls = celery_urls({"CELERY_BROKER_URL": f"redis://:{SECRET}@r:6379/1", "CELERY_RESULT_BACKEND": "x"})
    assert urls == {"broker": {"env": "CELERY_BROKER_URL"}, "backend": {"env": "CELERY_RESULT_BACKEND"}}


def test_celery_worker_yaml_matches_the_executor_schema() -> None:
    from dagster_celery.cli import get_validated_config

    env = {
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/4",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        config = get_validated_config(str(REPO_ROOT / "scripts/deploy/celery.yaml"))
    assert config["broker"] == env["CELERY_BROKER_URL"] and config["backend"] == env["CELERY_RESULT_BACKEND"]


def test_stt_asset_goes_to_the_gpu_queue_and_the_rest_to_the_default_queue() -> None:
    from callpipe.defs.launch import process_call_date_job

    job = process_call_date_job()
    queues = {op.name: op.tags.get("dagster-celery/queue", "dagster") for op in job.graph.iterate_op_defs()}
    assert queues.pop("transcribe_chunk") == GPU_OP_TAGS["dagster-celery/queue"] == "gpu"
    assert queues and set(queues.values()) == {"dagster"}
