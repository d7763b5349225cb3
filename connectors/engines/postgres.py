"""PostgreSQL through psycopg 3: read-only transactions, statement_timeout, server-side cursors."""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql as pgsql

from connectors.types import ConnectionSpec, ResultColumn, TableInfo

from . import catalog
from .errors import (
    DataSourceUnavailable,
    EngineError,
    QueryExecutionError,
    QueryTimeout,
    auth_failed,
    database_missing,
    scrub,
    unreachable,
)
from .runtime import OpenQuery, Watchdog, raise_if_cancelled
from .values import pg_type_name

DEFAULT_PORT = 5432
APPLICATION_NAME = "prompt-studio"
DISCOVERY_STATEMENT_TIMEOUT_MS = 10_000
CHEAP_COUNT_BYTES = 8 * 1024 * 1024

_UNREACHABLE_HINTS = (
    "connection refused",
    "could not translate host name",
    "name or service not known",
    "timeout expired",
    "no route to host",
    "network is unreachable",
    "could not connect",
    "server closed the connection unexpectedly",
)


def classify_connect_error(spec: ConnectionSpec, message: str) -> DataSourceUnavailable:
    """The DataSourceUnavailable a failed connection attempt means, from the server's message."""
    lowered = message.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return auth_failed(spec)
    if "role" in lowered and "does not exist" in lowered:
        return auth_failed(spec)
    if "database" in lowered and "does not exist" in lowered:
        return database_missing(spec.database)
    if any(hint in lowered for hint in _UNREACHABLE_HINTS):
        # libpq says: connection to server at "h", port p failed: <reason>
        detail = message.strip().splitlines()[0].rsplit("failed:", 1)[-1].strip()
        return unreachable(spec, DEFAULT_PORT, detail)
    return DataSourceUnavailable(scrub(message.strip(), spec) or "Cannot connect to PostgreSQL")


def connect(spec: ConnectionSpec, *, timeout_s: float = 10) -> psycopg.Connection:
    options = {str(k): str(v) for k, v in spec.options.items()}
    options.setdefault("connect_timeout", str(max(2, math.ceil(timeout_s))))
    options.setdefault("application_name", APPLICATION_NAME)
    try:
        return psycopg.connect(
            host=spec.host or "localhost",
            port=spec.port or DEFAULT_PORT,
            dbname=spec.database or "postgres",
            user=spec.user or None,
            password=spec.password or None,
            autocommit=False,
            **options,
        )
    except psycopg.Error as exc:
        raise classify_connect_error(spec, str(exc)) from None


def server_version(conn: psycopg.Connection) -> str:
    conn.execute("SELECT 1").fetchone()
    return f"PostgreSQL {conn.info.parameter_status('server_version') or conn.info.server_version}"


def _translate(exc: Exception, spec: ConnectionSpec, dog: Watchdog | None) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    if dog is not None and (fired := dog.error()) is not None:
        return fired
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return QueryTimeout(f"The query did not finish within the statement timeout: {scrub(str(exc), spec)}")
    if isinstance(exc, psycopg.OperationalError) and "server closed the connection" in str(exc):
        return DataSourceUnavailable("The PostgreSQL server closed the connection during the query")
    return QueryExecutionError(scrub(str(exc).strip(), spec))


def _column_types(conn: psycopg.Connection, description: list[Any]) -> list[ResultColumn]:
    names: dict[int, str] = {}
    for col in description:
        info = conn.adapters.types.get(col.type_code)
        if info is not None:
            name = info.name + ("[]" if col.type_code == info.array_oid else "")
            names[col.type_code] = pg_type_name(name)
    unknown = [col.type_code for col in description if col.type_code not in names]
    if unknown:  # enums, domains, extension types: ask the catalog
        with conn.cursor() as cur:
            cur.execute("SELECT oid::int, format_type(oid, NULL) FROM pg_type WHERE oid = ANY(%s)", [unknown])
            names.update({oid: pg_type_name(name) for oid, name in cur.fetchall()})
    return [ResultColumn(name=col.name, type=names.get(col.type_code, "unknown")) for col in description]


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
    conn = connect(spec, timeout_s=float(spec.options.get("connect_timeout", 10)))
    cursor: psycopg.ServerCursor | None = None
    try:
        if on_connected is not None:
            on_connected({"backend_pid": conn.info.backend_pid})
        conn.read_only = True  # BEGIN READ ONLY
        with Watchdog(timeout_ms=timeout_ms, cancel_event=cancel_event, interrupt=conn.cancel_safe) as dog:

            def guarded(call: Callable[[], Any]) -> Any:
                try:
                    result = call()
                except psycopg.Error as exc:
                    raise _translate(exc, spec, dog) from None
                dog.check()
                return result

            def start() -> list[ResultColumn]:
                nonlocal cursor
                with conn.cursor() as setup:
                    setup.execute("SET TRANSACTION READ ONLY")
                    setup.execute(pgsql.SQL("SET LOCAL statement_timeout = {}").format(max(1, int(timeout_ms))))
                # A server-side cursor: rows come over in batches, never the whole result at once.
                cursor = conn.cursor(name=f"ps_{uuid.uuid4().hex[:16]}")
                cursor.itersize = batch_size
                cursor.execute(sql)
                return _column_types(conn, cursor.description or [])

            columns = guarded(start)
            yield OpenQuery(columns=columns, fetch=lambda n: guarded(lambda: cursor.fetchmany(n)))
            dog.check()
    finally:
        try:
            conn.close()  # rolls back the read-only transaction and drops the cursor with it
        except psycopg.Error:
            pass


def test(spec: ConnectionSpec, *, timeout_s: float) -> str:
    with connect(spec, timeout_s=timeout_s) as conn:
        try:
            return server_version(conn)
        except psycopg.Error as exc:
            raise _translate(exc, spec, None) from None


_DISCOVERY_FILTER = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
    AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
"""

_TABLES_SQL = f"""
SELECT n.nspname, c.relname, c.relkind, c.reltuples::bigint, coalesce(obj_description(c.oid, 'pg_class'), ''),
       c.relkind = 'r' AND pg_relation_size(c.oid) <= %(cheap_bytes)s
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition AND {_DISCOVERY_FILTER}
ORDER BY 1, 2
"""

_COLUMNS_SQL = f"""
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       t.typcategory IN ('S', 'E'), coalesce(col_description(c.oid, a.attnum), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition AND {_DISCOVERY_FILTER}
ORDER BY n.nspname, c.relname, a.attnum
"""

_KEYS_SQL = f"""
SELECT n.nspname, c.relname, a.attname, con.contype, fn.nspname, fc.relname, fa.attname
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) AS k(attnum, fattnum)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
LEFT JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.fattnum
WHERE con.contype IN ('p', 'f') AND {_DISCOVERY_FILTER}
"""


def discover(
    spec: ConnectionSpec, *, schemas: list[str] | None, sample_limit: int, sample_max_distinct: int
) -> list[TableInfo]:
    conn = connect(spec, timeout_s=float(spec.options.get("connect_timeout", 10)))
    try:
        conn.autocommit = True  # one failed sample query must not abort the rest
        conn.execute("SET default_transaction_read_only = on")
        conn.execute(pgsql.SQL("SET statement_timeout = {}").format(DISCOVERY_STATEMENT_TIMEOUT_MS))
        params = {"schemas": list(schemas) if schemas is not None else None, "cheap_bytes": CHEAP_COUNT_BYTES}
        tables = [
            catalog.RawTable(
                schema=schema,
                name=name,
                kind="view" if kind in ("v", "m") else "table",
                # reltuples is -1 until the table is first vacuumed or analyzed
                row_estimate=int(rows) if kind != "v" and rows is not None and rows >= 0 else None,
                description=description,
                count_if_missing=cheap,
            )
            for schema, name, kind, rows, description, cheap in conn.execute(_TABLES_SQL, params).fetchall()
        ]
        columns = [
            catalog.RawColumn(
                schema=row[0],
                table=row[1],
                name=row[2],
                data_type=row[3],
                nullable=row[4],
                textual=row[5],
                description=row[6],
            )
            for row in conn.execute(_COLUMNS_SQL, params).fetchall()
        ]
        keys = [
            catalog.RawKey(schema=s, table=t, column=c, primary=kind == "p", ref=(fs, ft, fc) if kind == "f" else None)
            for s, t, c, kind, fs, ft, fc in conn.execute(_KEYS_SQL, params).fetchall()
        ]

        def sample(schema: str, table: str, column: str, limit: int) -> list[Any]:
            query = pgsql.SQL(
                "SELECT v FROM (SELECT {col}::text AS v FROM {tbl} LIMIT {scan}) s"
                " WHERE v IS NOT NULL GROUP BY v ORDER BY count(*) DESC, v LIMIT {limit}"
            ).format(
                col=pgsql.Identifier(column),
                tbl=pgsql.Identifier(schema, table),
                scan=catalog.SAMPLE_SCAN_ROWS,
                limit=limit,
            )
            return [row[0] for row in conn.execute(query).fetchall()]

        def count(schema: str, table: str) -> int:
            query = pgsql.SQL("SELECT count(*) FROM {}").format(pgsql.Identifier(schema, table))
            return int(conn.execute(query).fetchone()[0])

        return catalog.assemble(
            tables,
            columns,
            keys,
            sampler=sample,
            counter=count,
            sample_errors=(psycopg.Error,),
            sample_limit=sample_limit,
            sample_max_distinct=sample_max_distinct,
        )
    except psycopg.Error as exc:
        raise _translate(exc, spec, None) from None
    finally:
        conn.close()
