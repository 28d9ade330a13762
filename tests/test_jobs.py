"""lib.core.jobs: a named job runs at most once per interval per process, on a thread of its
own, never twice at once; a failure is logged, not raised."""

from __future__ import annotations

import logging
import threading
import time

from lib.core import jobs


def _wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.01)


def test_a_job_runs_at_most_once_per_interval_on_a_thread_of_its_own():
    name = "test-once-per-interval"
    jobs.forget(name)
    threads: list[str] = []
    assert jobs.start(name, lambda: threads.append(threading.current_thread().name))
    _wait_until(lambda: threads and not jobs.is_running(name))
    assert threads == [name]  # not the caller's thread
    assert not jobs.start(name, lambda: threads.append("again"))  # within the minute
    assert jobs.start(name, lambda: threads.append("later"), every=0.0, wait=True)
    assert threads == [name, "later"]
    jobs.forget(name)


def test_a_job_never_runs_twice_at_once():
    name = "test-never-twice"
    jobs.forget(name)
    release = threading.Event()
    runs: list[int] = []

    def slow() -> None:
        runs.append(1)
        release.wait(5)

    assert jobs.start(name, slow, every=0.0)
    _wait_until(lambda: runs)
    assert jobs.is_running(name)
    assert not jobs.start(name, slow, every=0.0)  # no interval, but it is running
    assert not jobs.start(name, slow, every=0.0, wait=True)
    release.set()
    _wait_until(lambda: not jobs.is_running(name))
    assert runs == [1]
    jobs.forget(name)


def test_a_failing_job_is_logged_and_retried_after_the_interval(caplog):
    name = "test-failing"
    jobs.forget(name)

    def broken() -> None:
        raise RuntimeError("database went away")

    with caplog.at_level(logging.ERROR, logger="lib.core.jobs"):
        assert jobs.start(name, broken, wait=True)  # the caller gets no exception
    assert "background job test-failing failed" in caplog.text
    assert "database went away" in caplog.text
    assert not jobs.is_running(name)
    assert not jobs.start(name, broken, wait=True)  # not again within the interval
    jobs.forget(name)
    assert jobs.start(name, lambda: None, wait=True)


def test_work_done_elsewhere_counts_as_a_run():
    name = "test-count-as-run"
    jobs.forget(name)
    jobs.count_as_run(name)
    assert not jobs.start(name, lambda: None)
    jobs.forget(name)
