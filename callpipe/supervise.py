"""Watching a ``callpipe batch`` run from the main thread while a worker thread executes it.

Dagster's in-process execution owns SIGINT and SIGTERM only on the main thread, where it merely
records them until a step checks (never while a step waits for a pool slot): a terminal's Ctrl-C
or a service manager's SIGTERM would be ignored. So the run executes in a worker thread and the
main thread keeps the signals. Every second it looks after the run:

- heartbeat: renews the run's ``callpipe/alive-until`` tag (:data:`callpipe.leases.ALIVE_UNTIL_TAG`),
  so that another host can tell, one lease after this process dies, that the run is over;
- pool waits: when a step of the run waits for a pool slot (``gpu``), says on stderr which run
  holds it and since when (again every 5 minutes), and ends that run at once if its process is
  provably gone (:func:`callpipe.defs.run_owners.reap_dead_runs`);
- SIGTERM / SIGINT: gives back the run's leases (:func:`callpipe.leases.release`), marks the run
  canceled, frees its pool slots and raises :class:`BatchInterrupted` (the command line exits at
  once with 128 + the signal number and one line on stderr).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from callpipe.faultpoints import park

if TYPE_CHECKING:  # this module is imported by the command line for every command: keep it light
    import dagster as dg

INVOCATION_TAG = "callpipe/invocation"
"""Run tag with a fresh id per run launched by ``callpipe batch``: how the main thread finds it."""
POLL_SECONDS = 1.0
WAIT_REPORT_SECONDS = 300.0
"""How often a continuing pool wait is reported again (Dagster's own blocked message interval)."""

_terminal: TextIO | None = None


def terminal(line: str) -> None:
    """Write one line to stderr as it was when :func:`stop_signals` began: Dagster redirects fd 2
    to its compute log while a run executes, through a ``tail`` that may not copy a last line
    before the process exits."""
    stream = _terminal or sys.stderr
    stream.write(line.rstrip("\n") + "\n")
    stream.flush()


class BatchInterrupted(Exception):
    """``callpipe batch`` was stopped by a signal; the message is the line for stderr."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopFlag:
    """The first SIGTERM or SIGINT received (``signum``), and an event set when it arrives."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()

    def check(self, what: str) -> None:
        """Raise :class:`BatchInterrupted` if a signal came (``what`` says where we stopped)."""
        if self.signum is not None:
            name = signal.Signals(self.signum).name
            raise BatchInterrupted(self.signum, f"callpipe: batch stopped by {name} {what}")


_active: StopFlag | None = None


@contextlib.contextmanager
def stop_signals() -> Iterator[StopFlag]:
    """Catch SIGTERM and SIGINT into a :class:`StopFlag` (re-entrant: an outer one is reused), and
    write a :class:`BatchInterrupted` raised inside to stderr before it propagates. Off the main
    thread no handler can be set: the flag is then never raised."""
    global _active, _terminal
    if _active is not None:
        yield _active
        return
    flag = StopFlag()
    _terminal = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace")  # before any redirect
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, flag._handle)
    _active = flag
    try:
        yield flag
    except BatchInterrupted as exc:
        terminal(str(exc))
        raise
    finally:
        _active = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _terminal.close()
        _terminal = None


class Supervisor:
    """Runs one partition in a worker thread and looks after it from this thread (module doc)."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        partition_key: str,
        tags: Mapping[str, str],
        lease_seconds: float,
        stop: StopFlag,
    ) -> None:
        from callpipe.leases import ALIVE_UNTIL_TAG, alive_until

        self.instance = instance
        self.partition_key = partition_key
        self.lease_seconds = lease_seconds
        self.stop = stop
        self.token = uuid.uuid4().hex
        self.tags = {**tags, INVOCATION_TAG: self.token, ALIVE_UNTIL_TAG: alive_until(lease_seconds)}
        self.run_id: str | None = None
        self._outcome: dict[str, Any] = {}
        self._next_beat = time.monotonic() + lease_seconds / 3
        self._reported: dict[tuple[str, str], float] = {}
        self._warned = False

    def run(self, run_config: Mapping[str, Any]) -> Any:
        """Execute the run and return its :class:`~callpipe.defs.launch.PartitionRun`."""
        self.stop.check("before its run started")
        worker = threading.Thread(
            target=self._work, args=(run_config,), name=f"callpipe-run-{self.partition_key}", daemon=True
        )
        _start_without_sigint(worker)
        while worker.is_alive():
            if self.stop.signum is not None:
                self._cancel()
            self._look_after()
            self.stop.event.wait(POLL_SECONDS)
        worker.join()
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["result"]

    def _work(self, run_config: Mapping[str, Any]) -> None:
        from callpipe.defs.launch import execute_partition

        try:
            park("planning")  # fault tests only (inert unless CALLPIPE_FAULT_PARK names it)
            self._outcome["result"] = execute_partition(
                self.partition_key, instance=self.instance, tags=self.tags, run_config=run_config
            )
        except BaseException as exc:  # handed to the main thread
            self._outcome["error"] = exc

    def _find_run(self) -> str | None:
        import dagster as dg

        if self.run_id is None:
            found = self.instance.get_run_ids(dg.RunsFilter(tags={INVOCATION_TAG: self.token}), limit=1)
            self.run_id = found[0] if found else None
        return self.run_id

    def _look_after(self) -> None:
        from callpipe.leases import ALIVE_UNTIL_TAG, alive_until

        try:
            run_id = self._find_run()
            if run_id is None:
                return
            if time.monotonic() >= self._next_beat:
                self.instance.add_run_tags(run_id, {ALIVE_UNTIL_TAG: alive_until(self.lease_seconds)})
                self._next_beat = time.monotonic() + self.lease_seconds / 3
            self._watch_pools(run_id)
        except Exception as exc:  # instance storage hiccup: the run itself goes on
            if not self._warned:
                terminal(f"callpipe: warning: cannot watch run {self.run_id}: {type(exc).__name__}")
                self._warned = True

    def _watch_pools(self, run_id: str) -> None:
        from callpipe.defs.run_owners import pool_waits, reap_dead_runs

        waits = pool_waits(self.instance, run_id)
        if not waits:
            return
        for reaped in reap_dead_runs(self.instance):  # a holder that died meanwhile
            terminal(f"callpipe: ended run {reaped.run_id} and freed its pool slots: {reaped.reason}")
        now = time.monotonic()
        for wait in pool_waits(self.instance, run_id):
            key = (wait.step_key, wait.holder_run_id)
            if now - self._reported.get(key, -WAIT_REPORT_SECONDS) >= WAIT_REPORT_SECONDS:
                terminal(wait.message(run_id))
                self._reported[key] = now

    def _cancel(self) -> None:
        """Leases given back, run canceled, pool slots freed; then :class:`BatchInterrupted`.
        If the store or the instance fails meanwhile, the line says so and the next run (or a
        sensor tick) ends the run instead, as after a SIGKILL."""
        signum = self.stop.signum
        assert signum is not None
        name = signal.Signals(signum).name
        try:
            run_id = self._find_run()
        except Exception:
            run_id = None
        if run_id is None:
            self.stop.check(f"before its run of {self.partition_key} started")
        try:
            released = release_run_leases(run_id, self.partition_key)
            run = self.instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                self.instance.report_run_canceled(run, message=f"callpipe batch stopped by {name}")
            storage = self.instance.event_log_storage
            if storage.supports_global_concurrency_limits:
                storage.free_concurrency_slots_for_run(run_id)
        except Exception as exc:
            raise BatchInterrupted(
                signum,
                f"callpipe: batch stopped by {name}: run {run_id} of {self.partition_key} left to the "
                f"next run ({type(exc).__name__} while giving back its leases and slots)",
            ) from exc
        raise BatchInterrupted(
            signum,
            f"callpipe: batch stopped by {name}: run {run_id} of {self.partition_key} canceled, "
            f"{released} leases and its pool slots released",
        )


def _start_without_sigint(worker: threading.Thread) -> None:
    """Start ``worker`` with SIGINT blocked in it, so that the helper processes Dagster starts from
    it (``tail`` and ``watch_orphans`` mirroring the compute logs) inherit the blocked signal: a
    terminal's Ctrl-C, sent to the whole process group, then leaves them to exit with this process
    instead of printing their own KeyboardInterrupt tracebacks."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        worker.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        worker.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def release_run_leases(run_id: str, partition_key: str) -> int:
    """Give back every lease ``run_id`` holds on the partition's unprocessed recordings."""
    from callpipe.defs.partitions import partition_window
    from callpipe.leases import release
    from callpipe.storage import get_audio_storage

    store = get_audio_storage()
    start, end = partition_window(partition_key)
    released, cursor = 0, None
    while True:
        page = store.list_recordings(processed=False, since=start, until=end, limit=1000, cursor=cursor)
        for ref in page.items:
            if ref.timestamp is not None and ref.timestamp < end and release(store, ref.recording_id, run_id):
                released += 1
        cursor = page.next_cursor
        if cursor is None:
            return released
