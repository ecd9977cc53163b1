"""Lease owners are Dagster runs: the instance knows when one is over (see :mod:`callpipe.leases`)."""

import dagster as dg

from callpipe.leases import OwnerCheck, process_is_gone


def run_owner_check(instance: dg.DagsterInstance) -> OwnerCheck:
    """``is_owner_alive`` for :func:`callpipe.stage_runner.claim` and the day's manifest.

    A run the instance reports finished (success, failure, cancelled) holds no lease any more, so
    its recordings are taken over at once; so is a run Dagster still shows as started whose
    process, tagged by ``callpipe batch``, is no longer running on this host (killed by SIGKILL).
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
            known[run_id] = run is None or not (run.is_finished or process_is_gone(run.tags))
        return known[run_id]

    return alive
