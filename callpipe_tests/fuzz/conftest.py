"""Fuzz suite: prints how many inputs each target was given."""

from __future__ import annotations

from typing import Any

from callpipe_tests.fuzz.support import COUNTS, PROFILE


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COUNTS:
        terminalreporter.section(f"callpipe fuzz inputs (profile {PROFILE})")
        for target, count in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{target}: {count}")


# The real moto S3 server fixtures of the storage tests (a fixture is found by its name here).
from callpipe_tests.storage.conftest import bucket, s3_client  # noqa: E402, F401
