"""Named points where a fault test can park a ``callpipe batch`` process, to kill it there.

A test sets ``CALLPIPE_FAULT_PARK`` to a point name and ``CALLPIPE_FAULT_READY`` to a file path;
the process that reaches that point writes the file (its pid) and waits there forever, until the
test signals it. With either variable unset (production) :func:`park` returns at once and does
nothing else. Points: ``planning`` (a partition chosen, its run not created yet),
``stage:<stage>`` (one recording's result of that stage written, inside the step: for ``stt``
the ``gpu`` pool slot is held), ``before:<stage>`` (the previous step finished, this one has done
nothing yet), ``finalize`` (one recording finalized) and ``save:audio`` (a save's audio written,
its document not yet: any process that saves, e.g. ``callpipe record`` or ``callpipe serve``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PARK_ENV = "CALLPIPE_FAULT_PARK"
READY_ENV = "CALLPIPE_FAULT_READY"


def park(point: str) -> None:
    """Wait forever at ``point`` when a fault test asked for it; otherwise do nothing."""
    if os.environ.get(PARK_ENV) != point or not os.environ.get(READY_ENV):
        return
    ready = Path(os.environ[READY_ENV])
    temp = ready.with_name(f".{ready.name}.tmp")
    temp.write_text(f"{os.getpid()}\n")
    temp.replace(ready)  # the test sees the file whole or not at all
    threading.Event().wait()
