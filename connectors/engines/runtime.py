"""What every engine shares while a query runs: the watchdog that enforces the deadline and the
caller's cancel event, and the handle an open query is read through."""

from __future__ import annotations

import logging
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


class Watchdog:
    """Calls `interrupt` once, from its own thread, when the deadline passes or `cancel_event` is set.

    The engines also set a server-side timeout where they have one; the watchdog is what cancels
    on the server when that is missing (KILL QUERY, interrupt()) and what turns a cancel event
    into a cancelled query. `reason` says why it fired, so an error the interrupted driver raises
    can be reported as the timeout or cancellation it really is.
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
        self._deadline = time.monotonic() + timeout_ms / 1000
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.cancel_event is not None and self.cancel_event.is_set():
                self.reason = CANCELLED
                break
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self.reason = TIMEOUT
                break
            self._stop.wait(min(_POLL_S, remaining))
        else:
            return
        try:
            self.interrupt()
        except Exception:  # the query may already be gone; the caller still gets the right error
            logger.warning("interrupting a %s query failed", self.reason, exc_info=True)

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
