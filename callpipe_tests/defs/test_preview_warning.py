"""Dagster's PreviewWarning about partitioned asset checks is silenced where the checks are defined."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loading_the_definitions_prints_no_preview_warning() -> None:
    code = (
        "import warnings\n"
        "import dagster as dg\n"
        "warnings.simplefilter('error', dg.PreviewWarning)\n"  # one raised while loading fails it
        "import callpipe.defs.definitions as d\n"
        "assert d.ALL_CHECKS\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PreviewWarning" not in done.stderr


def test_the_filter_is_local_to_the_checks() -> None:
    """Other preview warnings still show: the filter is not global."""
    code = (
        "import warnings\n"
        "import dagster as dg\n"
        "import callpipe.defs.checks\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    warnings.warn('Specifying a partitions_def on an AssetCheckSpec is currently in preview',"
        " dg.PreviewWarning)\n"
        "print(len(seen))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1"
