"""PostgreSQL through psycopg 3: read-only transactions, statement_timeout, server-side cursors."""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus

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
from .pool import ConnectionPool, Lease
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


def connect(spec: ConnectionSpec, *, timeout_s: float = 10, autocommit: bool = False) -> psycopg.Connection:
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
            autocommit=autocommit,
            **options,
        )
    except psycopg.Error as exc:
        raise classify_connect_error(spec, str(exc)) from None


def _close_quietly(conn: psycopg.Connection) -> None:
    try:
        conn.close()
    except psycopg.Error:
        pass


# Query connections, per data source (see pool.py). Each is in autocommit mode: every query opens
# its own read-only transaction (`_begin`) and rolls it back, so nothing a query did outlives it.
POOL: ConnectionPool[psycopg.Connection] = ConnectionPool(name="postgres", close=_close_quietly)


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


def _declare(
    conn: psycopg.Connection, sql: str, *, name: str, timeout_ms: int, first_batch: int, last: bool
) -> tuple[list[Any], list[tuple]]:
    """Open the query and read its first batch, in one round trip (a pipeline).

    A read-only transaction with its own statement timeout, then a server-side cursor over `sql` and
    a first FETCH: rows come over in batches, never the whole result at once. Every statement goes
    through the extended protocol, where `sql` can only ever be one statement. When the first batch
    is all the caller will read (`last`), the transaction is rolled back in the same round trip.
    This also resets the session: the previous query on the connection ended in a ROLLBACK, which
    undoes whatever it set.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise psycopg.OperationalError("the connection is not idle")
    cursor = pgsql.Identifier(name)
    declare = pgsql.SQL("DECLARE {} NO SCROLL CURSOR FOR ").format(cursor) + pgsql.SQL(sql)  # type: ignore[arg-type]
    # A libpq older than 14 has no pipeline: the same statements then go one by one.
    batch = conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext()
    with conn.cursor() as setup, conn.cursor() as first:
        with batch:
            setup.execute("BEGIN READ ONLY")
            setup.execute(pgsql.SQL("SET LOCAL statement_timeout = {}").format(max(1, int(timeout_ms))))
            # binary=True: the extended protocol even outside a pipeline (DECLARE returns no rows to format)
            setup.execute(declare, binary=True)
            first.execute(pgsql.SQL("FETCH FORWARD {} FROM {}").format(max(1, int(first_batch)), cursor))
            if last:
                setup.execute("ROLLBACK")
        return list(first.description or []), first.fetchall()


def _end(conn: psycopg.Connection) -> bool:
    """Roll the query's transaction back (closing its cursor); True when the connection is clean again."""
    try:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        return False
    return not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE


@contextmanager
def open_query(
    spec: ConnectionSpec,
    sql: str,
    *,
    timeout_ms: int,
    batch_size: int,
    cancel_event: threading.Event | None = None,
    on_connected: Callable[[dict], None] | None = None,
    pool_key: str | None = None,
    max_rows: int | None = None,
) -> Iterator[OpenQuery]:
    """Run `sql` in a read-only transaction through a server-side cursor.

    With `pool_key`, the connection comes from (and, when the query ended cleanly, goes back to) the
    process's pool for that key; without it, a new connection is opened and closed. `max_rows`, when
    the caller will read no more than that, lets a result that fits in one batch end at once.
    """
    raise_if_cancelled(cancel_event)
    timeout_s = float(spec.options.get("connect_timeout", 10))

    def fresh() -> psycopg.Connection:
        return connect(spec, timeout_s=timeout_s, autocommit=True)

    lease = POOL.checkout(pool_key, spec, fresh)
    reusable = False
    name = f"ps_{uuid.uuid4().hex[:16]}"
    one_batch = max_rows is not None and max_rows <= batch_size
    try:
        # Interrupts whichever connection the query ends up on (see the retry below).
        with Watchdog(
            timeout_ms=timeout_ms, cancel_event=cancel_event, interrupt=lambda: lease.conn.cancel_safe()
        ) as dog:

            def guarded(call: Callable[[], Any]) -> Any:
                try:
                    result = call()
                except psycopg.Error as exc:
                    raise _translate(exc, spec, dog) from None
                dog.check()
                return result

            def declare() -> tuple[list[Any], list[tuple]]:
                if on_connected is not None:
                    on_connected({"backend_pid": lease.conn.info.backend_pid})
                return _declare(
                    lease.conn, sql, name=name, timeout_ms=timeout_ms, first_batch=batch_size, last=one_batch
                )

            try:
                description, buffered = declare()
            except psycopg.Error as exc:
                if not (lease.reused and lease.conn.broken and dog.reason is None):
                    raise _translate(exc, spec, dog) from None
                # An idle connection the server has closed since (restart, idle timeout): replace it, once.
                POOL.checkin(lease, reusable=False)
                lease = Lease(conn=fresh(), key=pool_key, fingerprint=lease.fingerprint)
                description, buffered = guarded(declare)
            dog.check()
            conn = lease.conn
            columns = guarded(lambda: _column_types(conn, description))
            exhausted = one_batch or len(buffered) < batch_size

            def fetch(n: int) -> list[tuple]:
                nonlocal buffered, exhausted
                if buffered:
                    rows, buffered = buffered[:n], buffered[n:]
                    return rows
                if exhausted:
                    return []
                query = pgsql.SQL("FETCH FORWARD {} FROM {}").format(max(1, int(n)), pgsql.Identifier(name))
                rows = guarded(lambda: conn.execute(query).fetchall())
                exhausted = len(rows) < n
                return rows

            yield OpenQuery(columns=columns, fetch=fetch)
            dog.check()
        # Only a query that ended cleanly, and was not interrupted, leaves a connection worth keeping.
        reusable = dog.reason is None and _end(conn)  # after a single batch: already ended, nothing is sent
    finally:
        # A connection that is not kept is closed, which also ends its transaction and cursor.
        POOL.checkin(lease, reusable=reusable)


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
