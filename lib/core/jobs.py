"""Work a page starts beside itself: the routine tick (lib.cases.tick), the rewards' claims
(lib.rewards.eligibility), the KPI roll-ups (lib.kpi.rollup). Cron runs the same work through
``python -m lib tick``; the pages run it too, so that a site without cron still moves on.

A job has a name. ``start(name, work)`` returns at once and runs ``work`` on a daemon thread
named after the job, unless this process started the job less than ``every`` seconds ago or it
is still running: at most once per interval per process, never twice at once. A failure is
written to the log with its traceback and is not raised (the page that started it is fine); the
job runs again once the interval has passed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_log = logging.getLogger(__name__)

MINUTE = 60.0


@dataclass
class _Job:
    running: threading.Lock = field(default_factory=threading.Lock)
    started: float = -math.inf  # time.monotonic() of the last start in this process


_jobs: dict[str, _Job] = {}
_guard = threading.Lock()  # makes "due and not running, so mark it started" one step


def _job(name: str) -> _Job:
    with _guard:
        return _jobs.setdefault(name, _Job())


def start(name: str, work: Callable[[], object], *, every: float = MINUTE,
          wait: bool = False) -> bool:
    """Run ``work`` on a thread of its own if this process has not started job ``name`` in the
    last ``every`` seconds and it is not running now; True if it was started.

    ``every=0`` keeps only "never twice at once", for a caller that judges when the work is due
    by itself (the KPI roll-ups carry their own time in the database, which cron moves too).
    ``wait=True`` runs the work in the caller's thread instead and returns when it is done."""
    job = _job(name)
    with _guard:
        if time.monotonic() - job.started < every or not job.running.acquire(blocking=False):
            return False
        job.started = time.monotonic()
    if wait:
        _run(name, job, work)
    else:
        threading.Thread(target=_run, args=(name, job, work), daemon=True, name=name).start()
    return True


def _run(name: str, job: _Job, work: Callable[[], object]) -> None:
    try:
        work()
    except Exception:  # retried after the interval; the page is fine
        _log.exception("background job %s failed", name)
    finally:
        job.running.release()


def count_as_run(name: str) -> None:
    """The caller did job ``name``'s work itself: its interval starts now (the benchmark runs
    the tick and wants no page to start another while it times pages)."""
    job = _job(name)
    with _guard:
        job.started = time.monotonic()


def is_running(name: str) -> bool:
    return _job(name).running.locked()


def forget(name: str) -> None:
    """Forget when job ``name`` last started, so that the next ``start`` runs it (tests)."""
    job = _job(name)
    with _guard:
        job.started = -math.inf
