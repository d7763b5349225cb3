"""Idle source connections kept per process, so a query does not pay for a new connection each time.

A connection is filed under the caller's key (the data source) and a fingerprint of everything it was
opened with (host, port, database, user, password, options). A checkout takes an idle connection of
the same key and fingerprint; connections of the same key under another fingerprint belong to a source
that has since been edited, and are closed on sight. Idle connections are closed after
`IDLE_TIMEOUT_S`, any connection after `MAX_LIFETIME_S`, and at most `MAX_IDLE_PER_KEY` per key and
`MAX_IDLE_TOTAL` in all are kept (the least recently returned go first).

The engines decide what may come back: only a connection whose query ended cleanly, with its
transaction rolled back, is returned; anything that failed, was cancelled or timed out is closed. They
also reset the session on every checkout (a new read-only transaction with its statement timeout;
MySQL first resets the whole session).

After a fork (Celery's prefork pool) the child must not touch its parent's sockets: a pool that finds
itself in a new process forgets its connections without closing them (closing would end the parent's
sessions) and starts empty, with a new lock (the parent's may have been held by a thread the child
does not have).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from connectors.types import ConnectionSpec

logger = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 60.0
MAX_LIFETIME_S = 1800.0
MAX_IDLE_PER_KEY = 4
MAX_IDLE_TOTAL = 32

C = TypeVar("C")


def fingerprint(spec: ConnectionSpec) -> str:
    """A digest of every connection parameter, the password included (never the password itself)."""
    material = json.dumps(
        [spec.engine, spec.host, spec.port, spec.database, spec.user, spec.password, spec.path, spec.options],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass
class Lease(Generic[C]):
    """A connection checked out of a pool (or opened for one query when `key` is None)."""

    conn: C
    key: str | None
    fingerprint: str
    created: float = field(default_factory=time.monotonic)
    reused: bool = False


@dataclass
class _Idle(Generic[C]):
    conn: C
    fingerprint: str
    created: float
    returned: float


class ConnectionPool(Generic[C]):
    def __init__(
        self,
        *,
        name: str,
        close: Callable[[C], None],
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_lifetime_s: float = MAX_LIFETIME_S,
        max_idle_per_key: int = MAX_IDLE_PER_KEY,
        max_idle_total: int = MAX_IDLE_TOTAL,
    ) -> None:
        self.name = name
        self._close = close
        self.idle_timeout_s = idle_timeout_s
        self.max_lifetime_s = max_lifetime_s
        self.max_idle_per_key = max_idle_per_key
        self.max_idle_total = max_idle_total
        self._idle: dict[str, list[_Idle[C]]] = {}  # key -> idle connections, most recently returned last
        self._lock = threading.Lock()
        self._pid = os.getpid()
        ref = weakref.ref(self)  # a pool that is gone needs no reset

        def after_fork_in_child() -> None:
            pool = ref()
            if pool is not None:
                pool._reset_in_child()

        os.register_at_fork(after_in_child=after_fork_in_child)

    # --- checkout / checkin -----------------------------------------------------------------------

    def checkout(self, key: str | None, spec: ConnectionSpec, connect: Callable[[], C]) -> Lease[C]:
        """An idle connection of `key` opened with `spec`'s parameters, or a new one from `connect()`."""
        digest = fingerprint(spec)
        if key is None:
            return Lease(conn=connect(), key=None, fingerprint=digest)
        now = time.monotonic()
        doomed: list[C] = []
        found: _Idle[C] | None = None
        with self._lock:
            self._forget_after_fork()
            entries = self._idle.get(key, [])
            kept = []
            for entry in entries:
                if entry.fingerprint != digest or self._expired(entry, now):
                    doomed.append(entry.conn)  # an edited source's old connection, or a stale one
                else:
                    kept.append(entry)
            if kept:
                found = kept.pop()  # the most recently used: the likeliest to be alive
            if kept:
                self._idle[key] = kept
            else:
                self._idle.pop(key, None)
        self._close_all(doomed)
        if found is not None:
            return Lease(conn=found.conn, key=key, fingerprint=digest, created=found.created, reused=True)
        return Lease(conn=connect(), key=key, fingerprint=digest)

    def checkin(self, lease: Lease[C], *, reusable: bool) -> None:
        """Give a connection back: kept when `reusable` and the pool has room, closed otherwise."""
        if lease.key is None or not reusable:
            self._close_all([lease.conn])
            return
        now = time.monotonic()
        doomed: list[C] = []
        with self._lock:
            if self._forget_after_fork():
                return  # opened by the parent: not ours to keep (nor to close)
            entry = _Idle(conn=lease.conn, fingerprint=lease.fingerprint, created=lease.created, returned=now)
            if self._expired(entry, now):
                doomed.append(entry.conn)
            else:
                entries = self._idle.setdefault(lease.key, [])
                entries.append(entry)
                while len(entries) > self.max_idle_per_key:
                    doomed.append(entries.pop(0).conn)
                doomed += self._trim(now)
        self._close_all(doomed)

    # --- invalidation -----------------------------------------------------------------------------

    def close_key(self, key: str) -> int:
        """Close every idle connection of `key` (its source was edited or deleted). Returns how many."""
        with self._lock:
            if self._forget_after_fork():
                return 0
            doomed = [e.conn for e in self._idle.pop(key, [])]
        self._close_all(doomed)
        return len(doomed)

    def clear(self) -> None:
        with self._lock:
            if self._forget_after_fork():
                return
            doomed = [e.conn for entries in self._idle.values() for e in entries]
            self._idle.clear()
        self._close_all(doomed)

    def idle_count(self, key: str | None = None) -> int:
        with self._lock:
            self._forget_after_fork()
            if key is not None:
                return len(self._idle.get(key, []))
            return sum(len(entries) for entries in self._idle.values())

    # --- internals (called with the lock held, except _close_all) ---------------------------------

    def _expired(self, entry: _Idle[C], now: float) -> bool:
        return now - entry.returned > self.idle_timeout_s or now - entry.created > self.max_lifetime_s

    def _trim(self, now: float) -> list[C]:
        doomed: list[C] = []
        for key in list(self._idle):
            entries = self._idle[key]
            live = [e for e in entries if not self._expired(e, now)]
            doomed += [e.conn for e in entries if self._expired(e, now)]
            if live:
                self._idle[key] = live
            else:
                del self._idle[key]
        everything = sorted(
            ((e.returned, key, e) for key, entries in self._idle.items() for e in entries), key=lambda t: t[0]
        )
        for _returned, key, entry in everything[: max(0, len(everything) - self.max_idle_total)]:
            self._idle[key].remove(entry)
            if not self._idle[key]:
                del self._idle[key]
            doomed.append(entry.conn)
        return doomed

    def _reset_in_child(self) -> None:
        self._lock = threading.Lock()
        self._idle = {}
        self._pid = os.getpid()

    def _forget_after_fork(self) -> bool:
        if self._pid == os.getpid():
            return False
        # A forked child: these sockets are the parent's. Drop the references, never close them.
        self._idle = {}
        self._pid = os.getpid()
        return True

    def _close_all(self, conns: list[Any]) -> None:
        for conn in conns:
            try:
                self._close(conn)
            except Exception:  # closing a dead connection must not fail the query that found it
                logger.debug("closing a pooled %s connection failed", self.name, exc_info=True)
