"""SQLite through the standard library: a read-only URI, an authorizer, and a deadline."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from connectors.types import ConnectionSpec, ResultColumn, TableInfo

from . import catalog
from .errors import DataSourceUnavailable, EngineError, QueryExecutionError, file_missing, scrub
from .runtime import OpenQuery, Watchdog, raise_if_cancelled
from .values import sqlite_type_name

SCHEMA = "main"
PROGRESS_OPCODES = 1_000
DISCOVERY_QUERY_BUDGET_S = 2.0

# What a query may do beyond reading: nothing. mode=ro already refuses writes; this also refuses
# ATTACH (reading other files), PRAGMA and everything else that is not a plain read.
_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _authorize(action: int, *args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def connect(spec: ConnectionSpec, *, timeout_s: float = 5) -> sqlite3.Connection:
    path = Path(spec.path or spec.database)
    if not str(path) or not path.is_file():
        raise file_missing(str(path))
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails here on a non-database file
    except sqlite3.Error as exc:
        raise DataSourceUnavailable(f"Cannot open SQLite database {str(path)!r}: {exc}") from None
    return conn


def server_version(conn: sqlite3.Connection) -> str:
    (version,) = conn.execute("SELECT sqlite_version()").fetchone()
    return f"SQLite {version}"


def _translate(exc: Exception, spec: ConnectionSpec, dog: Watchdog | None) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    if dog is not None and (fired := dog.error()) is not None:
        return fired
    return QueryExecutionError(scrub(str(exc), spec))


def _infer_columns(description: Any, rows: list[tuple]) -> list[ResultColumn]:
    columns = []
    for i, desc in enumerate(description or ()):
        sample = next((row[i] for row in rows if row[i] is not None), None)
        columns.append(ResultColumn(name=desc[0], type=sqlite_type_name(None, sample)))
    return columns


@contextmanager
def open_query(
    spec: ConnectionSpec,
    sql: str,
    *,
    timeout_ms: int,
    batch_size: int,
    cancel_event: threading.Event | None = None,
    on_connected: Callable[[dict], None] | None = None,
) -> Iterator[OpenQuery]:
    raise_if_cancelled(cancel_event)
    conn = connect(spec)
    try:
        if on_connected is not None:
            on_connected({})
        with Watchdog(timeout_ms=timeout_ms, cancel_event=cancel_event, interrupt=conn.interrupt) as dog:
            # The progress handler stops a statement between the watchdog's polls, in SQLite itself.
            conn.set_progress_handler(lambda: 1 if dog.reason else 0, PROGRESS_OPCODES)
            conn.set_authorizer(_authorize)

            def guarded(call: Callable[[], Any]) -> Any:
                try:
                    result = call()
                except sqlite3.Error as exc:
                    raise _translate(exc, spec, dog) from None
                dog.check()
                return result

            cursor = guarded(lambda: conn.execute(sql))
            # SQLite has no result types: infer them from the first batch, kept for the first fetch.
            buffered: list[tuple] = guarded(lambda: cursor.fetchmany(batch_size))

            def fetch(n: int) -> list[tuple]:
                nonlocal buffered
                if buffered:
                    rows, buffered = buffered[:n], buffered[n:]
                    if len(rows) < n:
                        rows += guarded(lambda: cursor.fetchmany(n - len(rows)))
                    return rows
                return guarded(lambda: cursor.fetchmany(n))

            yield OpenQuery(columns=_infer_columns(cursor.description, buffered), fetch=fetch)
            dog.check()
    finally:
        conn.close()


def test(spec: ConnectionSpec, *, timeout_s: float) -> str:
    conn = connect(spec, timeout_s=timeout_s)
    try:
        return server_version(conn)
    finally:
        conn.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def discover(
    spec: ConnectionSpec, *, schemas: list[str] | None, sample_limit: int, sample_max_distinct: int
) -> list[TableInfo]:
    if schemas is not None and SCHEMA not in schemas:
        return []
    conn = connect(spec)
    deadline = [0.0]
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline[0] else 0, PROGRESS_OPCODES)

    def bounded(query: str) -> list[tuple]:
        deadline[0] = time.monotonic() + DISCOVERY_QUERY_BUDGET_S
        return conn.execute(query).fetchall()

    try:
        tables, columns, keys = [], [], []
        masters = bounded(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')"
            " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        for kind, name in masters:
            tables.append(catalog.RawTable(schema=SCHEMA, name=name, kind=kind, count_if_missing=kind == "table"))
            for _cid, col, declared, notnull, _default, pk in bounded(f"PRAGMA table_info({_quote(name)})"):
                declared = declared or ""
                affinity = declared.upper()
                columns.append(
                    catalog.RawColumn(
                        schema=SCHEMA,
                        table=name,
                        name=col,
                        data_type=sqlite_type_name(declared) if declared else "any",
                        nullable=not notnull,
                        textual=any(word in affinity for word in ("CHAR", "CLOB", "TEXT")),
                    )
                )
                if pk:
                    keys.append(catalog.RawKey(schema=SCHEMA, table=name, column=col, primary=True))
            if kind == "table":
                for fk in bounded(f"PRAGMA foreign_key_list({_quote(name)})"):
                    ref_table, from_col, to_col = fk[2], fk[3], fk[4]
                    if to_col is None:  # REFERENCES t without a column means t's primary key
                        to_col = next((r[1] for r in bounded(f"PRAGMA table_info({_quote(ref_table)})") if r[5]), "")
                    ref = (SCHEMA, ref_table, to_col)
                    keys.append(catalog.RawKey(schema=SCHEMA, table=name, column=from_col, primary=False, ref=ref))

        def sample(schema: str, table: str, column: str, limit: int) -> list[Any]:
            return [
                row[0]
                for row in bounded(
                    f"SELECT v FROM (SELECT {_quote(column)} AS v FROM {_quote(table)}"
                    f" LIMIT {catalog.SAMPLE_SCAN_ROWS}) WHERE v IS NOT NULL"
                    f" GROUP BY v ORDER BY count(*) DESC, v LIMIT {int(limit)}"
                )
            ]

        def count(schema: str, table: str) -> int:
            return int(bounded(f"SELECT count(*) FROM {_quote(table)}")[0][0])

        return catalog.assemble(
            tables,
            columns,
            keys,
            sampler=sample,
            counter=count,
            sample_errors=(sqlite3.Error,),
            sample_limit=sample_limit,
            sample_max_distinct=sample_max_distinct,
        )
    except sqlite3.Error as exc:
        raise QueryExecutionError(f"Discovery failed: {exc}") from None
    finally:
        conn.close()
