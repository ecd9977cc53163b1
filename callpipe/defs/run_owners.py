"""Lease owners are Dagster runs: the instance knows when one is over (see :mod:`callpipe.leases`).

Also the reaper of ``callpipe batch`` runs whose process is gone (SIGKILL, out of memory, machine
lost): Dagster would show them STARTED forever and, without a daemon, keep their ``gpu`` pool
slots claimed, so that every later run waits on a slot nobody will free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from callpipe.leases import PID_TAG, OwnerCheck, run_death

IN_PROGRESS = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def run_owner_check(instance: dg.DagsterInstance) -> OwnerCheck:
    """``is_owner_alive`` for :func:`callpipe.stage_runner.claim` and the day's manifest.

    A run the instance reports finished (success, failure, cancelled) holds no lease any more, so
    its recordings are taken over at once; so is a run Dagster still shows as started whose
    process, tagged by ``callpipe batch``, is provably gone (:func:`callpipe.leases.run_death`).
    Other runs in progress and ids the instance does not know (another instance, ``local``) keep
    their leases until they expire. Answers are cached per check.
    """
    known: dict[str, bool] = {}

    def alive(run_id: str) -> bool:
        if run_id not in known:
            try:
                run = instance.get_run_by_id(run_id)
            except Exception:  # instance storage unreachable: trust the lease
                return True
            known[run_id] = run is None or not (run.is_finished or run_death(run.tags) is not None)
        return known[run_id]

    return alive


@dataclass(frozen=True)
class Reaped:
    """A run the reaper ended (marked failed) or whose leftover pool slots it freed."""

    run_id: str
    reason: str


def reap_dead_runs(instance: dg.DagsterInstance, now: datetime | None = None) -> list[Reaped]:
    """Mark failed every ``callpipe batch`` run in progress whose process is provably gone, and
    free the pool slots (claimed or queued) of those runs and of any finished run still holding
    some. Runs without process tags (launched by the daemon) are left to run monitoring."""
    now = now or datetime.now(UTC)
    storage = instance.event_log_storage
    reaped: list[Reaped] = []
    for run in instance.get_runs(dg.RunsFilter(statuses=list(IN_PROGRESS))):
        if PID_TAG not in run.tags:
            continue
        reason = run_death(run.tags, now)
        if reason is None:
            continue
        instance.report_run_failed(run, message=f"callpipe: run ended by the next run: {reason}")
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(Reaped(run.run_id, reason))
    if storage.supports_global_concurrency_limits:
        for run_id in sorted(slot_run_ids(instance) - {r.run_id for r in reaped}):
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
                reaped.append(Reaped(run_id, "finished run still held pool slots"))
    return reaped


def slot_run_ids(instance: dg.DagsterInstance) -> set[str]:
    """Runs holding or queued for a slot of any pool."""
    storage = instance.event_log_storage
    ids = set(storage.get_concurrency_run_ids())
    for info in storage.get_concurrency_infos(list(storage.get_concurrency_keys())).values():
        ids.update(slot.run_id for slot in info.claimed_slots)
    return ids


@dataclass(frozen=True)
class PoolWait:
    """A step of one run waiting for a pool slot that another run holds."""

    pool: str
    step_key: str
    holder_run_id: str
    holder_step_key: str
    since: datetime | None

    def message(self, run_id: str) -> str:
        """One line for the terminal of the waiting run."""
        since = self.since.isoformat(timespec="seconds") if self.since else "an unknown time"
        return (
            f"callpipe: run {run_id} step {self.step_key} waits for a slot of pool {self.pool!r} "
            f"held by run {self.holder_run_id} (step {self.holder_step_key}) since {since}"
        )


def pool_waits(instance: dg.DagsterInstance, run_id: str) -> list[PoolWait]:
    """What ``run_id`` waits for now: each of its queued (unassigned) steps with a holder of the
    pool's slots, and since when that holder has had it."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    waits = []
    for pool, info in storage.get_concurrency_infos(list(storage.get_concurrency_keys())).items():
        mine = [p for p in info.pending_steps if p.run_id == run_id and p.assigned_timestamp is None]
        holders = [s for s in info.claimed_slots if s.run_id != run_id]
        if not mine or not holders:
            continue
        assigned = {(p.run_id, p.step_key): p.assigned_timestamp for p in info.pending_steps}
        for step in mine:
            for slot in holders:
                since = assigned.get((slot.run_id, slot.step_key))
                waits.append(PoolWait(pool, step.step_key, slot.run_id, slot.step_key, since))
    return waits


def reap_on_tick(context: dg.SensorEvaluationContext | dg.ScheduleEvaluationContext) -> list[Reaped]:
    """:func:`reap_dead_runs` from a sensor or schedule tick, so that the runs they launch (under
    ``dagster dev`` or the daemon) never wait on a slot of a killed ``callpipe batch``; logged,
    never failing the tick (a context built without an instance, in tests, reaps nothing)."""
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:
        return []
    try:
        reaped = reap_dead_runs(instance)
    except Exception as exc:  # instance storage hiccup: the next tick tries again
        context.log.warning(f"could not check for dead runs: {type(exc).__name__}")
        return []
    for item in reaped:
        context.log.warning(f"ended run {item.run_id} and freed its pool slots: {item.reason}")
    return reaped
