"""MySQL and MariaDB through PyMySQL: read-only transactions, server-side statement limits, KILL QUERY."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pymysql.cursors

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
from .values import mysql_type_name

DEFAULT_PORT = 3306
SYSTEM_SCHEMAS = ("information_schema", "mysql", "performance_schema", "sys")
DISCOVERY_STATEMENT_TIMEOUT_S = 10

# Connection options a data source may set; anything else in `options` is ignored.
_PASSTHROUGH_OPTIONS = {
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "charset",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "ssl_disabled",
    "ssl_verify_cert",
    "ssl_verify_identity",
}

# Server error codes: timeouts (MySQL max_execution_time, MariaDB max_statement_time), KILL QUERY.
_ER_QUERY_TIMEOUT = {3024, 1969}
_ER_QUERY_INTERRUPTED = 1317
_CR_CONNECTION_LOST = {2006, 2013}


def _connect_kwargs(spec: ConnectionSpec, timeout_s: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {k: v for k, v in spec.options.items() if k in _PASSTHROUGH_OPTIONS}
    kwargs.setdefault("connect_timeout", max(1, int(timeout_s)))
    kwargs.setdefault("charset", "utf8mb4")
    return {
        "host": spec.host or "localhost",
        "port": int(spec.port or DEFAULT_PORT),
        "user": spec.user or None,
        "password": spec.password or "",
        "database": spec.database or None,
        "autocommit": False,
        "local_infile": False,
        **kwargs,
    }


def classify_connect_error(spec: ConnectionSpec, message: str, code: int | None = None) -> DataSourceUnavailable:
    lowered = message.lower()
    if code == 1045 or "access denied for user" in lowered and "to database" not in lowered:
        return auth_failed(spec)
    if code == 1044:
        return DataSourceUnavailable(f"User {spec.user!r} may not access database {spec.database!r}")
    if code == 1049 or "unknown database" in lowered:
        return database_missing(spec.database)
    if code in (2003, 2005, 2013) or "can't connect" in lowered or "connection refused" in lowered:
        detail = message.split("(", 1)[-1].rstrip(")") if "(" in message else message
        return unreachable(spec, DEFAULT_PORT, detail)
    return DataSourceUnavailable(scrub(message, spec) or "Cannot connect to MySQL")


def connect(spec: ConnectionSpec, *, timeout_s: float = 10) -> pymysql.connections.Connection:
    try:
        return pymysql.connect(**_connect_kwargs(spec, timeout_s))
    except pymysql.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        raise classify_connect_error(spec, message, code) from None


def server_version(conn: pymysql.connections.Connection) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        (version,) = cur.fetchone()
    return str(version)


def is_mariadb(conn: pymysql.connections.Connection) -> bool:
    return "mariadb" in conn.get_server_info().lower()


def kill_query(spec: ConnectionSpec, connection_id: int) -> None:
    """Stop the statement running on `connection_id`, from a second connection."""
    side = connect(spec, timeout_s=5)
    try:
        with side.cursor() as cur:
            cur.execute("KILL QUERY %s", (int(connection_id),))
    finally:
        side.close()


def _translate(exc: Exception, spec: ConnectionSpec, dog: Watchdog | None) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    if dog is not None and (fired := dog.error()) is not None:
        return fired
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if code in _ER_QUERY_TIMEOUT:
        return QueryTimeout(f"The query did not finish within the statement time limit: {scrub(message, spec)}")
    if code in _CR_CONNECTION_LOST:
        return DataSourceUnavailable(f"Lost the connection to the MySQL server: {scrub(message, spec)}")
    return QueryExecutionError(scrub(message, spec))


def _columns(cursor: pymysql.cursors.SSCursor) -> list[ResultColumn]:
    # The description has no charset; the result's field packets tell text from binary columns.
    result = getattr(cursor, "_result", None)
    fields = getattr(result, "fields", None) or []
    charsets = [getattr(f, "charsetnr", None) for f in fields]
    columns = []
    for i, desc in enumerate(cursor.description or ()):
        charset = charsets[i] if i < len(charsets) else None
        columns.append(ResultColumn(name=desc[0], type=mysql_type_name(desc[1], charsetnr=charset)))
    return columns


def _close_quietly(conn: pymysql.connections.Connection) -> None:
    try:
        conn.close()
    except pymysql.MySQLError:
        pass


# Query connections, per data source (see pool.py). A reused one has its whole session reset first.
POOL: ConnectionPool[pymysql.connections.Connection] = ConnectionPool(name="mysql", close=_close_quietly)

_COM_RESET_CONNECTION = 0x1F  # MySQL 5.7.3+, MariaDB 10.2.4+; PyMySQL has no method for it


def _reset_session(conn: pymysql.connections.Connection) -> None:
    """Back to a fresh session: user variables (`@x := ...`), temporary tables and session settings of
    the previous query are gone; the character set is set again, the reset restores the server's."""
    conn._execute_command(_COM_RESET_CONNECTION, b"")  # type: ignore[attr-defined]
    conn._read_ok_packet()  # type: ignore[attr-defined]
    conn.set_character_set(conn.charset, conn.collation)


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
) -> Iterator[OpenQuery]:
    """Run `sql` in a read-only transaction through an unbuffered cursor.

    With `pool_key`, the connection comes from (and, when the query read to its end cleanly, goes back
    to) the process's pool for that key; without it, a new connection is opened and closed.
    """
    raise_if_cancelled(cancel_event)
    timeout_s = float(spec.options.get("connect_timeout", 10))
    lease = POOL.checkout(pool_key, spec, lambda: connect(spec, timeout_s=timeout_s))
    if lease.reused:
        try:
            _reset_session(lease.conn)
        except (pymysql.MySQLError, OSError):
            # An idle connection the server has closed since (restart, wait_timeout): replace it, once.
            POOL.checkin(lease, reusable=False)
            lease = Lease(conn=connect(spec, timeout_s=timeout_s), key=pool_key, fingerprint=lease.fingerprint)
    conn = lease.conn
    connection_id = conn.thread_id()
    query = OpenQuery(columns=[], fetch=lambda n: [])
    cursors: list[pymysql.cursors.SSCursor] = []
    reusable = False
    try:
        if on_connected is not None:
            on_connected({"connection_id": connection_id})
        interrupt = lambda: kill_query(spec, connection_id)  # noqa: E731
        with Watchdog(timeout_ms=timeout_ms, cancel_event=cancel_event, interrupt=interrupt) as dog:

            def guarded(call: Callable[[], Any]) -> Any:
                try:
                    result = call()
                except pymysql.MySQLError as exc:
                    query.exhausted = True  # the server ended the statement
                    raise _translate(exc, spec, dog) from None
                dog.check()
                return result

            def start() -> tuple[pymysql.cursors.SSCursor, list[ResultColumn]]:
                with conn.cursor() as setup:
                    # Session-wide too: DDL commits implicitly, and the next transaction stays read-only.
                    setup.execute("SET SESSION TRANSACTION READ ONLY")
                    if is_mariadb(conn):
                        setup.execute("SET SESSION max_statement_time = %s", (max(0.001, timeout_ms / 1000),))
                    else:  # applies to SELECT only; the watchdog's KILL QUERY covers the rest
                        setup.execute("SET SESSION max_execution_time = %s", (max(1, int(timeout_ms)),))
                    setup.execute("START TRANSACTION READ ONLY")
                cursor = conn.cursor(pymysql.cursors.SSCursor)  # unbuffered: rows stream from the server
                cursors.append(cursor)
                cursor.execute(sql)
                return cursor, _columns(cursor)

            cursor, query.columns = guarded(start)

            def fetch(n: int) -> list[tuple]:
                rows = list(guarded(lambda: cursor.fetchmany(n)))
                if len(rows) < n:
                    query.exhausted = True
                return rows

            query.fetch = fetch
            yield query
            dog.check()
            if pool_key is not None and not query.exhausted:
                fetch(1)  # the caller read exactly to the end (LIMIT = max_rows)? Then this finds nothing.
        # Only a query read to its end, cleanly and uninterrupted, leaves a connection worth keeping.
        reusable = pool_key is not None and query.exhausted and dog.reason is None and _end(conn, cursors)
    finally:
        if reusable:
            POOL.checkin(lease, reusable=True)
        else:
            _close(spec, conn, connection_id, cursors, exhausted=query.exhausted)


def _end(conn: pymysql.connections.Connection, cursors: list[pymysql.cursors.SSCursor]) -> bool:
    try:
        for cursor in cursors:
            cursor.close()  # read to the end already: nothing is left to drain
        conn.rollback()
    except (pymysql.MySQLError, OSError):
        return False
    return True


def _close(
    spec: ConnectionSpec,
    conn: pymysql.connections.Connection,
    connection_id: int,
    cursors: list[pymysql.cursors.SSCursor],
    *,
    exhausted: bool,
) -> None:
    # An unbuffered cursor's close() reads every remaining row. Stop the statement on the server
    # first so that only what is already in flight is read; if that fails, read nothing.
    killed = False
    if not exhausted:
        try:
            kill_query(spec, connection_id)
            killed = True
        except EngineError:
            pass
    for cursor in cursors:
        result = getattr(cursor, "_result", None)
        if result is not None and not (exhausted or killed):
            result.unbuffered_active = False
        try:
            cursor.close()
        except pymysql.MySQLError:
            pass  # the KILL QUERY error that ends the drained result
        if result is not None:
            result.unbuffered_active = False  # its __del__ must not read from the closed socket
    try:
        conn.close()
    except pymysql.MySQLError:
        pass


def test(spec: ConnectionSpec, *, timeout_s: float) -> str:
    conn = connect(spec, timeout_s=timeout_s)
    try:
        return server_version(conn)
    except pymysql.MySQLError as exc:
        raise _translate(exc, spec, None) from None
    finally:
        conn.close()


def _in_clause(values: list[str]) -> str:
    return ", ".join(["%s"] * len(values))


def discover(
    spec: ConnectionSpec, *, schemas: list[str] | None, sample_limit: int, sample_max_distinct: int
) -> list[TableInfo]:
    conn = connect(spec, timeout_s=float(spec.options.get("connect_timeout", 10)))
    try:
        conn.autocommit(True)
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            if is_mariadb(conn):
                cur.execute("SET SESSION max_statement_time = %s", (DISCOVERY_STATEMENT_TIMEOUT_S,))
            else:
                cur.execute("SET SESSION max_execution_time = %s", (DISCOVERY_STATEMENT_TIMEOUT_S * 1000,))
            if schemas is None:
                if spec.database:
                    schemas = [spec.database]
                else:
                    cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
                    schemas = [row[0] for row in cur.fetchall()]
            schemas = [s for s in schemas if s.lower() not in SYSTEM_SCHEMAS]
            if not schemas:
                return []
            in_schemas = _in_clause(schemas)
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS, TABLE_COMMENT FROM information_schema.TABLES"
                f" WHERE TABLE_SCHEMA IN ({in_schemas}) ORDER BY TABLE_SCHEMA, TABLE_NAME",
                schemas,
            )
            tables = [
                catalog.RawTable(
                    schema=schema,
                    name=name,
                    kind="view" if kind == "VIEW" else "table",
                    row_estimate=int(rows) if rows is not None and kind != "VIEW" else None,
                    description=comment if kind != "VIEW" else "",
                )
                for schema, name, kind, rows, comment in cur.fetchall()
            ]
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE, COLUMN_KEY,"
                f" COLUMN_COMMENT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({in_schemas})"
                " ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
                schemas,
            )
            textual = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
            columns, keys = [], []
            for schema, table, name, column_type, data_type, nullable, key, comment in cur.fetchall():
                columns.append(
                    catalog.RawColumn(
                        schema=schema,
                        table=table,
                        name=name,
                        data_type=str(column_type).lower(),
                        nullable=nullable == "YES",
                        textual=str(data_type).lower() in textual,
                        description=comment or "",
                    )
                )
                if key == "PRI":
                    keys.append(catalog.RawKey(schema=schema, table=table, column=name, primary=True))
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME,"
                " REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE"
                f" WHERE REFERENCED_TABLE_NAME IS NOT NULL AND TABLE_SCHEMA IN ({in_schemas})",
                schemas,
            )
            keys += [
                catalog.RawKey(schema=s, table=t, column=c, primary=False, ref=(rs, rt, rc))
                for s, t, c, rs, rt, rc in cur.fetchall()
            ]

        def sample(schema: str, table: str, column: str, limit: int) -> list[Any]:
            col, tbl = _quote(column), f"{_quote(schema)}.{_quote(table)}"
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT v FROM (SELECT {col} AS v FROM {tbl} LIMIT {catalog.SAMPLE_SCAN_ROWS}) s"
                    f" WHERE v IS NOT NULL GROUP BY v ORDER BY COUNT(*) DESC, v LIMIT {int(limit)}"
                )
                return [row[0] for row in cur.fetchall()]

        return catalog.assemble(
            tables,
            columns,
            keys,
            sampler=sample,
            sample_errors=(pymysql.MySQLError,),
            sample_limit=sample_limit,
            sample_max_distinct=sample_max_distinct,
        )
    except pymysql.MySQLError as exc:
        raise _translate(exc, spec, None) from None
    finally:
        conn.close()


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"
