"""``benchmarks/scale.py`` runs end to end on a small N and prints its summary line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAST = re.compile(
    r"scale N=200 rss_mb=(\S+) first_ms=(\S+) list_p95_ms=(\S+) search_p95_ms=(\S+) "
    r"dashboard_p95_ms=(\S+) stats_p95_ms=(\S+) day_write_s=(\S+)"
)


@pytest.mark.slow
def test_scale_benchmark_prints_positive_numbers(tmp_path: Path) -> None:
    keep = tmp_path / "data"
    env = {**os.environ, "CALLPIPE_PII_KEY": os.environ.get("CALLPIPE_PII_KEY") or "test-pii-key-0123456789"}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "scale.py"),
            "--calls",
            "200",
            "--runs",
            "5",
            "--keep",
            str(keep),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    match = LAST.fullmatch(lines[-1])
    assert match, lines[-1]
    numbers = [float(value) for value in match.groups()]
    assert all(value > 0 for value in numbers), lines[-1]
    summary = next(line for line in lines[:-1] if line.startswith("N=200: rss "))
    # stats came from the embedded catalog, holding a row for each call written before the server started
    assert "(catalog counts 200 recordings)" in summary, summary
    assert (keep / "n200" / "recordings" / "state" / "catalog.sqlite").is_file()
    # the data were written through the day writer into the kept folder: the history day and one more
    days = sorted(p.name for p in (keep / "n200" / "analytics" / "calls").iterdir())
    assert days == ["call_date=2026-01-01", "call_date=2026-01-02"], days


def test_scale_benchmark_refuses_a_non_positive_size(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "scale.py"),
            "--calls",
            "0",
            "--keep",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "must be positive" in done.stderr
    assert not (tmp_path / "d").exists()
