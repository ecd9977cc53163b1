"""Named points where a fault test can park a process (``callpipe batch``, a day's table write),
to kill it there or to let it go on once the test has done something in between.

A test sets ``CALLPIPE_FAULT_PARK`` to a point name and ``CALLPIPE_FAULT_READY`` to a file path;
the process that reaches that point writes the file (its pid) and waits there: forever, until
the test signals it, or, when ``CALLPIPE_FAULT_RESUME`` names a file, until that file exists
(then it goes on). With ``CALLPIPE_FAULT_PARK`` or ``CALLPIPE_FAULT_READY`` unset (production)
:func:`park` returns at once and does nothing else. Points: ``planning`` (a partition chosen,
its run not created yet), ``stage:<stage>`` (one recording's result of that stage written,
inside the step: for ``stt`` the ``gpu`` pool slot is held), ``before:<stage>`` (the previous
step finished, this one has done nothing yet), ``finalize`` (one recording finalized),
``save:audio`` (a save's audio written, its document not yet: any process that saves, e.g.
``callpipe record`` or ``callpipe serve``), and the analytics day write
(:mod:`callpipe.analytics`): ``tables:documents-read`` (the day's rows are built from the
documents, no lock taken, nothing written), ``tables:files-written`` (embedded store: the day's
Parquet files written under temporary names, write lock held, nothing renamed or committed) and
``tables:rows-written`` (PostgreSQL: the day's rows inserted, transaction not committed).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PARK_ENV = "CALLPIPE_FAULT_PARK"
READY_ENV = "CALLPIPE_FAULT_READY"
RESUME_ENV = "CALLPIPE_FAULT_RESUME"


def park(point: str) -> None:
    """Wait at ``point`` when a fault test asked for it; otherwise do nothing."""
    if os.environ.get(PARK_ENV) != point or not os.environ.get(READY_ENV):
        return
    ready = Path(os.environ[READY_ENV])
    temp = ready.with_name(f".{ready.name}.tmp")
    temp.write_text(f"{os.getpid()}\n")
    temp.replace(ready)  # the test sees the file whole or not at all
    resume = os.environ.get(RESUME_ENV)
    if not resume:
        threading.Event().wait()
    while not Path(resume).exists():
        time.sleep(0.02)
