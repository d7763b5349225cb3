"""The watchdog every engine runs its queries under: deadlines and cancel events fire the interrupt
once, from the process's one monitor thread, and never after the query has ended."""

from __future__ import annotations

import json
import os
import threading

from connectors.engines.runtime import CANCELLED, TIMEOUT, Watchdog

WAIT_S = 5  # an upper bound for the monitor thread to get round to it, not a timing assertion


def test_it_interrupts_a_query_past_its_deadline():
    interrupted = threading.Event()
    with Watchdog(timeout_ms=50, cancel_event=None, interrupt=interrupted.set) as dog:
        assert interrupted.wait(WAIT_S)
    assert dog.reason == TIMEOUT
    assert "within 50 ms" in dog.error().message


def test_it_interrupts_a_query_whose_cancel_event_is_set():
    interrupted, cancel = threading.Event(), threading.Event()
    with Watchdog(timeout_ms=60_000, cancel_event=cancel, interrupt=interrupted.set) as dog:
        cancel.set()
        assert interrupted.wait(WAIT_S)
    assert dog.reason == CANCELLED


def test_a_query_that_ended_in_time_is_never_interrupted():
    interrupted = threading.Event()
    with Watchdog(timeout_ms=100, cancel_event=None, interrupt=interrupted.set) as dog:
        pass
    # Past the deadline, with a later watchdog keeping the monitor busy: the ended one stays quiet.
    later = threading.Event()
    with Watchdog(timeout_ms=300, cancel_event=None, interrupt=later.set):
        assert later.wait(WAIT_S)
    assert not interrupted.is_set()
    assert dog.reason is None


def test_an_interrupt_has_finished_when_the_query_ends():
    finished = []
    release = threading.Event()

    def slow_interrupt() -> None:
        release.wait(WAIT_S)
        finished.append(True)

    with Watchdog(timeout_ms=10, cancel_event=None, interrupt=slow_interrupt) as dog:
        while dog.reason is None:
            release.wait(0.01)
        release.set()
    assert finished == [True]


def test_a_failing_interrupt_still_reports_the_timeout():
    def broken() -> None:
        raise RuntimeError("connection already gone")

    with Watchdog(timeout_ms=10, cancel_event=None, interrupt=broken) as dog:
        threading.Event().wait(0.2)
    assert dog.reason == TIMEOUT


def test_many_queries_share_one_monitor_thread():
    fired = [threading.Event() for _ in range(20)]
    dogs = [
        Watchdog(timeout_ms=60_000 if i % 2 else 30, cancel_event=None, interrupt=e.set) for i, e in enumerate(fired)
    ]
    for dog in dogs:
        dog.__enter__()
    try:
        assert all(fired[i].wait(WAIT_S) for i in range(0, 20, 2))
        assert [t.name for t in threading.enumerate()].count("engine-watchdog") == 1
        assert not any(fired[i].is_set() for i in range(1, 20, 2))
    finally:
        for dog in dogs:
            dog.__exit__(None, None, None)


def test_a_forked_child_gets_a_working_monitor_of_its_own():
    with Watchdog(timeout_ms=60_000, cancel_event=None, interrupt=lambda: None):
        pass  # the parent's monitor thread exists now
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            interrupted = threading.Event()
            with Watchdog(timeout_ms=20, cancel_event=None, interrupt=interrupted.set) as dog:
                fired = interrupted.wait(WAIT_S)
            report = {"fired": fired, "reason": dog.reason}
        except BaseException as exc:  # noqa: BLE001 - anything the child hits must reach the parent
            report = {"error": repr(exc)}
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(child, 0)
    assert report == {"fired": True, "reason": TIMEOUT}
