"""Fixtures and checks of the fault tests: stage logs, documents on disk, a restartable S3 server."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from callpipe.storage import LocalStore
from callpipe_tests.storage import conftest as storage_fixtures

STAGE_RAN = "stage %s ran on %s for run %s"
"""The debug line :func:`callpipe.stage_runner._run_one` logs once a stage result is written."""


@pytest.fixture
def stage_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captures the pipeline's per-stage debug lines of in-process runs (all threads)."""
    with caplog.at_level(logging.DEBUG, logger="callpipe.stage_runner"):
        yield caplog


def stage_runs(lines: Iterable[str]) -> Counter[tuple[str, str, str]]:
    """``(run, recording, stage)`` counts from :data:`STAGE_RAN` lines written by a log handler."""
    pattern = re.compile(r"^stage (\S+) ran on (\S+) for run (\S+)$")
    found: Counter[tuple[str, str, str]] = Counter()
    for line in lines:
        if match := pattern.match(line.strip()):
            stage, recording, run = match.groups()
            found[(run, recording, stage)] += 1
    return found


def logged_stage_runs(caplog: pytest.LogCaptureFixture) -> Counter[tuple[str, str, str]]:
    """``(run, recording, stage)`` counts of the stage results written, from the pipeline's log."""
    found: Counter[tuple[str, str, str]] = Counter()
    for record in caplog.records:
        if record.name == "callpipe.stage_runner" and record.msg == STAGE_RAN:
            stage, recording, run = record.args
            found[(run, recording, stage)] += 1
    return found


def metadata_files(store: LocalStore) -> list[Path]:
    """Every metadata document on disk (hidden temp files excluded, as listings exclude them)."""
    return sorted(p for p in (store.root / "metadata").rglob("*.json") if not p.name.startswith("."))


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


def parse_all(store: LocalStore) -> dict[str, dict]:
    """Every metadata document parsed as JSON (a half-written one would raise here)."""
    return {p.stem: json.loads(p.read_bytes()) for p in metadata_files(store)}


restartable_s3 = storage_fixtures.restartable_s3
