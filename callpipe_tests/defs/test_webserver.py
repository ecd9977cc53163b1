"""``dagster-webserver`` and ``dagster-daemon`` on loopback, loading ``workspace.yaml`` with a
self-contained instance: the code location over GraphQL, then a partition run launched through
GraphQL, dequeued by the daemon's run coordinator and executed to SUCCESS."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from callpipe.schema import ProcessingStatus, RecordingMetadata
from callpipe.stage_runner import stage_versions
from callpipe_tests.defs.conftest import local_setup

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT = 90.0
RUN_TIMEOUT = 180.0
CALL_DAY = "2025-06-15"
TABLES = ("calls", "turns", "entities", "day_aggregates")
"""The analytics tables: assets of one step, ``analytics_tables``."""
ASSETS = {
    "recordings",
    "transcripts",
    "corrected_transcripts",
    "call_sentiment",
    "call_intents",
    "call_entities",
    "call_topics",
    "call_analytics",
    *TABLES,
    "daily_call_summary",
}
CHECKS = {
    ("recordings", "recordings_have_valid_metadata"),
    ("recordings", "no_duplicate_recording_ids"),
    ("calls", "failure_rate_under_threshold"),
    ("daily_call_summary", "wer_not_worse_after_processing"),
}


@dataclass
class Dagster:
    url: str
    location: str
    repository: str
    logs: Path

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-6000:]}" for p in sorted(self.logs.glob("*.log")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_instance_yaml(home: Path) -> None:
    """The repo's dagster.yaml as this instance's: its storage defaults to ``home`` itself."""
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")


def seed_store(root: Path) -> None:
    """One recording on CALL_DAY, already processed by the current stage versions (so the run
    needs no speech model but its assets still count something)."""
    setup = local_setup(root)
    setup.save("rec-web-1", datetime.fromisoformat(f"{CALL_DAY}T12:00:00+00:00"))

    def done(meta: RecordingMetadata) -> None:
        meta.processed = True
        meta.status.status = ProcessingStatus.PROCESSED
        meta.provenance.stage_versions = stage_versions()

    setup.store.modify_metadata("rec-web-1", done)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (server plus its code server and run workers), then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def start(name: str, command: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagster]:
    """Webserver first, then the daemon (one code location load at a time on a small machine)."""
    base = tmp_path_factory.mktemp("dagster")
    home, logs, recordings = base / "home", base / "logs", base / "recordings"
    home.mkdir()
    logs.mkdir()
    write_instance_yaml(home)
    seed_store(recordings)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(recordings),
        "CALLPIPE_TIMEZONE": "UTC",
    }
    port = free_port()
    server = Dagster(f"http://127.0.0.1:{port}", "", "", logs)
    webserver = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"]
    processes = [start("webserver", webserver, env, logs)]
    try:
        (repository,) = wait_until(server, processes, "the code location", loaded_repositories)
        server.location, server.repository = repository["location"]["name"], repository["name"]
        processes.append(
            start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, logs)
        )
        wait_until(server, processes, "a healthy daemon", healthy_daemons)
        yield server
    finally:
        for process in processes:
            stop(process)


def loaded_repositories(server: Dagster) -> Any:
    with urllib.request.urlopen(f"{server.url}/server_info", timeout=10) as response:
        assert response.status == 200
    data = server.graphql(
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
    )
    return data["repositoriesOrError"].get("nodes")


def healthy_daemons(server: Dagster) -> Any:
    data = server.graphql(
        "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"
    )
    statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
    required = {s["daemonType"]: s["healthy"] for s in statuses if s["required"]}
    wanted = {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"}
    return required if wanted <= required.keys() and all(required[k] for k in wanted) else None


def wait_until(server: Dagster, processes: list[subprocess.Popen[bytes]], what: str, probe: Any) -> Any:
    """Poll ``probe(server)`` until it returns something truthy, at most START_TIMEOUT seconds."""
    deadline = time.monotonic() + START_TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"{process.args[0]} exited with {process.returncode}\n{server.log_tail()}")
        try:
            last = probe(server)
            if last:
                return last
        except (OSError, AssertionError) as exc:  # not listening yet, timeouts, GraphQL errors
            last = exc
        time.sleep(1)
    pytest.fail(f"no {what} after {START_TIMEOUT:.0f} s (last: {last!r})\n{server.log_tail()}")


def test_code_location_lists_assets_checks_sensors_schedule_and_job(dagster: Dagster) -> None:
    data = dagster.graphql(
        """query ($selector: RepositorySelector!) {
          repositoryOrError(repositorySelector: $selector) {
            __typename
            ... on Repository {
              jobs { name }
              sensors { name sensorState { status } }
              schedules { name cronSchedule executionTimezone scheduleState { status } }
              assetNodes {
                assetKey { path }
                isPartitioned
                assetChecksOrError { ... on AssetChecks { checks { name } } }
              }
            }
            ... on Error { message }
          }
        }""",
        selector={"repositoryName": dagster.repository, "repositoryLocationName": dagster.location},
    )["repositoryOrError"]
    assert data["__typename"] == "Repository", data
    nodes = data["assetNodes"]
    assert {"/".join(n["assetKey"]["path"]) for n in nodes} == ASSETS
    assert all(n["isPartitioned"] for n in nodes)
    checks = {
        (n["assetKey"]["path"][-1], c["name"])
        for n in nodes
        for c in n["assetChecksOrError"].get("checks", [])
    }
    assert checks == CHECKS
    assert {"process_call_date", "apply_retention"} <= {j["name"] for j in data["jobs"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in data["sensors"]}
    assert sensors == {"unprocessed_recordings_sensor": "RUNNING", "reprocessing_sensor": "RUNNING"}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in data["schedules"]}
    assert schedules == {"nightly_processing_schedule": "RUNNING", "retention_schedule": "RUNNING"}


LAUNCH = """mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PipelineConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}"""

RUN = """query ($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status
      tags { key value }
      stepStats { stepKey status }
      assetMaterializations {
        assetKey { path }
        partition
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}"""

CHECK = """query ($asset: [String!]!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: {path: $asset}, checkName: $check, partition: $partition, limit: 1) {
    runId status
  }
}"""

LOGS = """query ($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}"""


def launch_partition_run(dagster: Dagster, partition: str) -> str:
    params = {
        "selector": {
            "repositoryLocationName": dagster.location,
            "repositoryName": dagster.repository,
            "jobName": "process_call_date",
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    result = dagster.graphql(LAUNCH, params=params)["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    assert result["run"]["status"] == "QUEUED"  # the instance's QueuedRunCoordinator; the daemon dequeues
    return result["run"]["runId"]


def wait_for_run(dagster: Dagster, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        run = dagster.graphql(RUN, runId=run_id)["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            if run["status"] != "SUCCESS":
                events = dagster.graphql(LOGS, runId=run_id)["logsForRun"].get("events", [])
                messages = "\n".join(e.get("message", "") for e in events[-30:])
                pytest.fail(f"run {run_id} ended {run['status']}:\n{messages}")
            return run
        time.sleep(2)
    pytest.fail(f"run {run_id} not finished in {RUN_TIMEOUT:.0f} s\n{dagster.log_tail()}")


def metadata(run: dict[str, Any], asset: str) -> dict[str, int]:
    (event,) = [m for m in run["assetMaterializations"] if m["assetKey"]["path"] == [asset]]
    return {e["label"]: e["intValue"] for e in event["metadataEntries"] if "intValue" in e}


def test_partition_run_launched_through_graphql_succeeds(dagster: Dagster) -> None:
    run_id = launch_partition_run(dagster, CALL_DAY)
    run = wait_for_run(dagster, run_id)

    assert {"key": "dagster/partition", "value": CALL_DAY} in run["tags"]
    materialized = {m["assetKey"]["path"][-1]: m["partition"] for m in run["assetMaterializations"]}
    assert materialized == dict.fromkeys(ASSETS, CALL_DAY)
    steps = {s["stepKey"]: s["status"] for s in run["stepStats"]}
    # `transcripts` is a graph: plan and merge steps; no transcribe_chunk step when nothing is due.
    steps_of_several = {"transcripts.plan_stt_chunks", "transcripts.merge_stt_chunks", "analytics_tables"}
    asset_steps = ASSETS - {"transcripts", *TABLES} | steps_of_several
    assert steps == dict.fromkeys(asset_steps | {f"{asset}_{check}" for asset, check in CHECKS}, "SUCCESS")
    for asset, check in sorted(CHECKS):
        (execution,) = dagster.graphql(CHECK, asset=[asset], check=check, partition=CALL_DAY)[
            "assetCheckExecutions"
        ]
        assert (execution["runId"], execution["status"]) == (run_id, "SUCCEEDED"), (check, execution)
    # The run worker saw the seeded store (STORAGE_LOCAL_PATH reached it through the daemon).
    assert metadata(run, "recordings")["recordings"] == 1
    assert metadata(run, "recordings")["to_process"] == 0
    summary = metadata(run, "daily_call_summary")
    assert (summary["recordings"], summary["processed"]) == (1, 1)
