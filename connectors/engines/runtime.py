"""What every engine shares while a query runs: the watchdog that enforces the deadline and the
caller's cancel event, and the handle an open query is read through."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from connectors.types import ResultColumn

from .errors import EngineError, QueryCancelled, QueryTimeout

logger = logging.getLogger(__name__)

TIMEOUT = "timeout"
CANCELLED = "cancelled"
_POLL_S = 0.02
INTERRUPT_WAIT_S = 10.0


class Watchdog:
    """Calls `interrupt` once, from another thread, when the deadline passes or `cancel_event` is set.

    The engines also set a server-side timeout where they have one; the watchdog is what cancels
    on the server when that is missing (KILL QUERY, interrupt()) and what turns a cancel event
    into a cancelled query. `reason` says why it fired, so an error the interrupted driver raises
    can be reported as the timeout or cancellation it really is.

    Every watchdog of the process is watched by one monitor thread (`_Monitor`): starting a thread
    per query cost more than a pooled query itself. Once `__exit__` returns the watchdog can no
    longer fire, and an interrupt it did fire has finished, so the connection can be reused safely.
    """

    def __init__(
        self,
        *,
        timeout_ms: int,
        cancel_event: threading.Event | None,
        interrupt: Callable[[], None],
    ) -> None:
        self.timeout_ms = timeout_ms
        self.cancel_event = cancel_event
        self.interrupt = interrupt
        self.reason: str | None = None
        self.deadline = time.monotonic() + timeout_ms / 1000
        self._interrupted = threading.Event()

    def __enter__(self) -> Watchdog:
        _MONITOR.watch(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not _MONITOR.unwatch(self):
            # It fired: wait for its interrupt to finish, as the query's owner is about to close or
            # reuse what the interrupt acts on. Bounded: an interrupt that hangs must not hang us.
            self._interrupted.wait(INTERRUPT_WAIT_S)

    def due(self, now: float) -> str | None:
        if self.cancel_event is not None and self.cancel_event.is_set():
            return CANCELLED
        if now >= self.deadline:
            return TIMEOUT
        return None

    def fire(self) -> None:
        try:
            self.interrupt()
        except Exception:  # the query may already be gone; the caller still gets the right error
            logger.warning("interrupting a %s query failed", self.reason, exc_info=True)
        finally:
            self._interrupted.set()

    def error(self) -> EngineError | None:
        if self.reason == TIMEOUT:
            return QueryTimeout(f"The query did not finish within {self.timeout_ms} ms and was cancelled")
        if self.reason == CANCELLED:
            return QueryCancelled("The query was cancelled")
        return None

    def check(self) -> None:
        error = self.error()
        if error is not None:
            raise error


class _Monitor:
    """One daemon thread that wakes at the earliest deadline (and every `_POLL_S` while any watched
    query has a cancel event) and fires the watchdogs that are due, each interrupt on a thread of its
    own so a slow one (MySQL's KILL QUERY opens a connection) delays no other."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the thread and the lock's holder stay behind

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._watched: set[Watchdog] = set()
        self._thread: threading.Thread | None = None
        self._wake_at = float("inf")  # when the thread wakes next, as it last decided

    def watch(self, dog: Watchdog) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="engine-watchdog", daemon=True)
                self._thread.start()
            self._watched.add(dog)
            wake_by = dog.deadline if dog.cancel_event is None else time.monotonic() + _POLL_S
            if wake_by < self._wake_at:  # otherwise it wakes early enough already: no need to disturb it
                self._wake_at = wake_by
                self._cond.notify()

    def unwatch(self, dog: Watchdog) -> bool:
        """Stop watching `dog`; False when it has already fired."""
        with self._cond:
            if dog in self._watched:
                self._watched.discard(dog)
                return True
            return dog.reason is None

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                if cond is not self._cond:
                    return  # replaced after a fork
                now = time.monotonic()
                due = []
                for dog in list(self._watched):
                    reason = dog.due(now)
                    if reason is not None:
                        dog.reason = reason  # decided under the lock: unwatch() sees it
                        self._watched.discard(dog)
                        due.append(dog)
                if not due:
                    wait = min((dog.deadline - now for dog in self._watched), default=None)
                    if any(dog.cancel_event is not None for dog in self._watched):
                        wait = _POLL_S if wait is None else min(wait, _POLL_S)
                    self._wake_at = float("inf") if wait is None else now + wait
                    cond.wait(wait)
                    continue
            for dog in due:
                try:
                    threading.Thread(target=dog.fire, name="engine-interrupt", daemon=True).start()
                except RuntimeError:  # no thread to be had: interrupt from here rather than not at all
                    dog.fire()


_MONITOR = _Monitor()


def raise_if_cancelled(cancel_event: threading.Event | None) -> None:
    if cancel_event is not None and cancel_event.is_set():
        raise QueryCancelled("The query was cancelled")


@dataclass
class OpenQuery:
    """A running query: its columns and `fetch(n)`, which returns at most n more rows ([] at the end)."""

    columns: list[ResultColumn]
    fetch: Callable[[int], list[tuple]]
    exhausted: bool = field(default=False)

    def rows(self, *, max_rows: int, batch_size: int) -> Iterator[tuple]:
        fetched = 0
        while fetched < max_rows:
            batch = self.fetch(min(batch_size, max_rows - fetched))
            if not batch:
                return
            fetched += len(batch)
            yield from batch
