"""CPU burnt by a Dagster in-process run while one of its steps waits for a pool slot.

A fresh instance gets callpipe's ``dagster.yaml`` (every pool limited to 1) and a run that holds
the only ``gpu`` slot. A child process then executes, in process, a one-op job whose op is in the
``gpu`` pool, so it blocks. The parent samples the child's CPU time (user + system, /proc) over
``--seconds`` of waiting, then kills it. Twice: with Dagster 1.13's executor as shipped, and with
``callpipe.defs.launch.sleep_while_blocked_on_pools`` applied (what ``callpipe batch`` does).

Prints, per variant, CPU seconds used and their share of one core over the wall time measured.
Usage: ``.venv/bin/python benchmarks/pool_wait_cpu.py [--seconds 10]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import sys
import dagster as dg
from callpipe.defs.launch import sleep_while_blocked_on_pools

if sys.argv[2] == "fixed":
    sleep_while_blocked_on_pools()

@dg.op(pool="gpu")
def on_gpu() -> None:
    return None

@dg.job
def blocked() -> None:
    on_gpu()

with dg.DagsterInstance.from_config(sys.argv[1]) as instance:
    print("started", flush=True)
    blocked.execute_in_process(instance=instance)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(variant: str, seconds: float) -> tuple[float, float]:
    import dagster as dg

    with tempfile.TemporaryDirectory() as home:
        shutil.copyfile(REPO / "dagster.yaml", Path(home) / "dagster.yaml")
        with dg.DagsterInstance.from_config(home) as instance:
            storage = instance.event_log_storage
            storage.initialize_concurrency_limit_to_default("gpu")
            assert storage.claim_concurrency_slot("gpu", "holder-run", "holder-step").is_claimed
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, home, variant],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "started"
            time.sleep(3)  # job set-up done, the step is waiting
            cpu, wall = cpu_seconds(child.pid), time.monotonic()
            time.sleep(seconds)
            used, elapsed = cpu_seconds(child.pid) - cpu, time.monotonic() - wall
            assert child.poll() is None, "the job was not blocked"
        finally:
            child.kill()
            child.wait()
    return used, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    for variant in ("dagster as shipped", "fixed"):
        used, elapsed = measure("fixed" if variant == "fixed" else "shipped", args.seconds)
        share = used / elapsed
        print(f"{variant:>20}: {used:6.2f} CPU s in {elapsed:5.2f} s waiting = {share:6.1%} of a core")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
