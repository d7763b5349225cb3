"""The driver layer: reach a data source, read its catalog, and run one read-only query on it.

Pure Python, no Django. Each engine enforces read-only itself (a read-only transaction, a
read-only file) and cancels on the server when a deadline passes or the caller's cancel event
is set, so this layer stays safe even if the SQL validation in front of it were bypassed. The
SQL itself is not inspected here; that is the governed path's job.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import ModuleType

from connectors.types import ConnectionSpec, ResultColumn, TableInfo

from . import duckdb, federation, mysql, postgres, sqlite
from .errors import (
    DataSourceUnavailable,
    EngineError,
    QueryCancelled,
    QueryExecutionError,
    QueryTimeout,
)
from .pool import ConnectionPool
from .values import PLAIN_TYPES, to_json_safe, to_json_safe_column

__all__ = [
    "PLAIN_TYPES",
    "DataSourceUnavailable",
    "EngineError",
    "QueryCancelled",
    "QueryExecutionError",
    "QueryTimeout",
    "TestResult",
    "close_pooled",
    "discover",
    "execute",
    "execute_federated",
    "idle_pooled",
    "stream",
    "stream_federated",
    "test_connection",
    "to_json_safe",
    "to_json_safe_column",
]

_ENGINES: dict[str, ModuleType] = {"postgres": postgres, "mysql": mysql, "sqlite": sqlite, "duckdb": duckdb}


# Engines whose connections are worth keeping between queries (a network handshake and
# authentication each time); SQLite and DuckDB open a local file.
_POOLS: dict[str, ConnectionPool] = {"postgres": postgres.POOL, "mysql": mysql.POOL}


def source_pools() -> list[ConnectionPool]:
    return list(_POOLS.values())


def _pooling(spec: ConnectionSpec, pool_key: str | None) -> dict[str, str]:
    return {"pool_key": pool_key} if pool_key is not None and spec.engine in _POOLS else {}


@atexit.register
def _close_all_pooled() -> None:
    """Say goodbye to the servers on the way out, rather than leaving them a dropped socket."""
    for pool in _POOLS.values():
        pool.clear()


def close_pooled(pool_key: str) -> int:
    """Close the idle connections this process keeps for `pool_key` (its source was edited or deleted)."""
    return sum(pool.close_key(pool_key) for pool in _POOLS.values())


def idle_pooled(pool_key: str | None = None) -> int:
    """How many idle connections this process keeps (for `pool_key`, or in all)."""
    return sum(pool.idle_count(pool_key) for pool in _POOLS.values())


def _engine(spec: ConnectionSpec) -> ModuleType:
    try:
        return _ENGINES[spec.engine]
    except KeyError:
        raise ValueError(f"unknown engine {spec.engine!r}; expected one of {', '.join(_ENGINES)}") from None


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    ok: bool
    server_version: str | None
    latency_ms: int
    error_code: str | None = None
    error_message: str | None = None


def test_connection(spec: ConnectionSpec, *, timeout_s: float = 5) -> TestResult:  # noqa: PT028
    """Connect, ask for the server version, and report; never raises."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        version = _engine(spec).test(spec, timeout_s=timeout_s)
    except EngineError as exc:
        return TestResult(
            ok=False, server_version=None, latency_ms=elapsed(), error_code=exc.code, error_message=exc.message
        )
    except Exception as exc:  # a connection test reports every failure instead of raising it
        message = f"Unexpected error while connecting: {type(exc).__name__}"
        return TestResult(
            ok=False,
            server_version=None,
            latency_ms=elapsed(),
            error_code=DataSourceUnavailable.code,
            error_message=message,
        )
    return TestResult(ok=True, server_version=version, latency_ms=elapsed())


test_connection.__test__ = False  # type: ignore[attr-defined]  # importing it into a test module must not collect it


def discover(
    spec: ConnectionSpec,
    *,
    schemas: list[str] | None = None,
    sample_limit: int = 50,
    sample_max_distinct: int = 50,
) -> list[TableInfo]:
    """Tables and views with their columns, keys, row estimates and (for low-cardinality text) samples."""
    return _engine(spec).discover(
        spec, schemas=schemas, sample_limit=sample_limit, sample_max_distinct=sample_max_distinct
    )


def execute(
    spec: ConnectionSpec,
    sql: str,
    *,
    timeout_ms: int,
    max_rows: int,
    cancel_event: threading.Event | None = None,
    on_connected: Callable[[dict], None] | None = None,
    pool_key: str | None = None,
) -> tuple[list[ResultColumn], list[tuple]]:
    """Run one read-only query and return its columns and at most `max_rows` rows.

    `pool_key` (the data source's identity) lets PostgreSQL and MySQL reuse an idle connection of
    that source from this process's pool; see pool.py.
    """
    with _engine(spec).open_query(
        spec,
        sql,
        timeout_ms=timeout_ms,
        batch_size=max(1, min(max_rows, 10_000)),
        cancel_event=cancel_event,
        on_connected=on_connected,
        **_pooling(spec, pool_key),
        **({"max_rows": max_rows} if spec.engine == "postgres" else {}),
    ) as query:
        rows = list(query.rows(max_rows=max_rows, batch_size=max(1, min(max_rows, 10_000))))
        return query.columns, rows


def execute_federated(
    specs: dict[str, ConnectionSpec],
    sql: str,
    *,
    timeout_ms: int,
    max_rows: int,
    cancel_event: threading.Event | None = None,
) -> tuple[list[ResultColumn], list[tuple]]:
    """Run one query over several sources, addressed as `<alias>.<schema>.<table>`."""
    batch = max(1, min(max_rows, 10_000))
    with federation.open_query(specs, sql, timeout_ms=timeout_ms, batch_size=batch, cancel_event=cancel_event) as query:
        return query.columns, list(query.rows(max_rows=max_rows, batch_size=batch))


def stream(
    spec: ConnectionSpec,
    sql: str,
    *,
    timeout_ms: int,
    max_rows: int,
    batch_size: int = 200,
    pool_key: str | None = None,
) -> AbstractContextManager[tuple[list[ResultColumn], Iterator[tuple]]]:
    """A context manager yielding (columns, rows iterator); rows come from a server-side cursor in
    batches, so memory stays constant. `timeout_ms` bounds the whole stream."""
    opened = _engine(spec).open_query(
        spec, sql, timeout_ms=timeout_ms, batch_size=batch_size, **_pooling(spec, pool_key)
    )
    return _stream(opened, max_rows, batch_size)


def stream_federated(
    specs: dict[str, ConnectionSpec], sql: str, *, timeout_ms: int, max_rows: int, batch_size: int = 200
) -> AbstractContextManager[tuple[list[ResultColumn], Iterator[tuple]]]:
    """`stream` over several sources through DuckDB."""
    return _stream(
        federation.open_query(specs, sql, timeout_ms=timeout_ms, batch_size=batch_size), max_rows, batch_size
    )


@contextmanager
def _stream(opened: AbstractContextManager, max_rows: int, batch_size: int) -> Iterator[tuple[list, Iterator[tuple]]]:
    with opened as query:
        yield query.columns, query.rows(max_rows=max_rows, batch_size=batch_size)
