"""DuckDB files through the duckdb package: read_only, no external access, interrupt() on deadline.

`run_query` is shared with federation, which runs on its own in-memory DuckDB connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from connectors.types import ConnectionSpec, ResultColumn, TableInfo

from . import catalog
from .errors import DataSourceUnavailable, EngineError, QueryExecutionError, file_missing, scrub
from .runtime import OpenQuery, Watchdog, raise_if_cancelled
from .values import duckdb_type_name

# Never reach out for extensions: nothing is downloaded at run time.
BASE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")


def connect(spec: ConnectionSpec, *, timeout_s: float = 5) -> duckdb.DuckDBPyConnection:
    path = Path(spec.path or spec.database)
    if not str(path) or not path.is_file():
        raise file_missing(str(path))
    try:
        # The file is opened read-only, and queries may touch no other file (read_csv, COPY, ATTACH...).
        conn = duckdb.connect(str(path), read_only=True, config={**BASE_CONFIG, "enable_external_access": False})
        conn.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        raise DataSourceUnavailable(f"Cannot open DuckDB database {str(path)!r}: {exc}") from None
    return conn


def server_version(conn: duckdb.DuckDBPyConnection) -> str:
    (version,) = conn.execute("SELECT version()").fetchone()
    return f"DuckDB {version}"


def translate(exc: Exception, secrets: tuple[str, ...], dog: Watchdog | None) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    if dog is not None and (fired := dog.error()) is not None:
        return fired
    return QueryExecutionError(scrub(str(exc).strip(), secrets=secrets))


@contextmanager
def run_query(
    conn: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    timeout_ms: int,
    batch_size: int,
    cancel_event: threading.Event | None = None,
    secrets: tuple[str, ...] = (),
) -> Iterator[OpenQuery]:
    """Run `sql` on an open connection; rows stream from DuckDB's result as they are fetched."""
    with Watchdog(timeout_ms=timeout_ms, cancel_event=cancel_event, interrupt=conn.interrupt) as dog:

        def guarded(call: Callable[[], Any]) -> Any:
            try:
                result = call()
            except duckdb.Error as exc:
                raise translate(exc, secrets, dog) from None
            dog.check()
            return result

        guarded(lambda: conn.execute(sql))
        columns = [ResultColumn(name=d[0], type=duckdb_type_name(d[1])) for d in conn.description or ()]
        yield OpenQuery(columns=columns, fetch=lambda n: guarded(lambda: conn.fetchmany(n)))
        dog.check()


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
        with run_query(conn, sql, timeout_ms=timeout_ms, batch_size=batch_size, cancel_event=cancel_event) as query:
            yield query
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


_TEXT_TYPES = ("VARCHAR", "ENUM")


def discover(
    spec: ConnectionSpec, *, schemas: list[str] | None, sample_limit: int, sample_max_distinct: int
) -> list[TableInfo]:
    conn = connect(spec)
    try:
        where = "database_name = current_database() AND NOT internal AND schema_name NOT IN (?, ?)"
        params: list[Any] = list(SYSTEM_SCHEMAS)
        if schemas is not None:
            where += " AND list_contains(?, schema_name)"
            params.append(list(schemas))
        tables = [
            catalog.RawTable(schema=s, name=n, kind="table", row_estimate=size, description=comment or "")
            for s, n, size, comment in conn.execute(
                f"SELECT schema_name, table_name, estimated_size, comment FROM duckdb_tables() WHERE {where}", params
            ).fetchall()
        ]
        tables += [
            catalog.RawTable(schema=s, name=n, kind="view", description=comment or "")
            for s, n, comment in conn.execute(
                f"SELECT schema_name, view_name, comment FROM duckdb_views() WHERE {where}", params
            ).fetchall()
        ]
        tables.sort(key=lambda t: (t.schema, t.name))
        columns = [
            catalog.RawColumn(
                schema=s,
                table=t,
                name=c,
                data_type=duckdb_type_name(data_type),
                nullable=bool(nullable),
                textual=str(data_type).upper().startswith(_TEXT_TYPES),
                description=comment or "",
            )
            for s, t, c, data_type, nullable, comment in conn.execute(
                "SELECT schema_name, table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns()"
                f" WHERE {where} ORDER BY schema_name, table_name, column_index",
                params,
            ).fetchall()
        ]
        keys = []
        constraint_where = where.replace(" AND NOT internal", "")
        for s, t, kind, cols, ref_table, ref_cols in conn.execute(
            "SELECT schema_name, table_name, constraint_type, constraint_column_names, referenced_table,"
            " referenced_column_names FROM duckdb_constraints()"
            f" WHERE constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY') AND {constraint_where}",
            params,
        ).fetchall():
            for i, col in enumerate(cols):
                if kind == "PRIMARY KEY":
                    keys.append(catalog.RawKey(schema=s, table=t, column=col, primary=True))
                elif ref_table and i < len(ref_cols):  # DuckDB foreign keys stay within one schema
                    keys.append(
                        catalog.RawKey(schema=s, table=t, column=col, primary=False, ref=(s, ref_table, ref_cols[i]))
                    )

        def sample(schema: str, table: str, column: str, limit: int) -> list[Any]:
            return [
                row[0]
                for row in conn.execute(
                    f"SELECT v FROM (SELECT {_quote(column)} AS v FROM {_quote(schema)}.{_quote(table)}"
                    f" LIMIT {catalog.SAMPLE_SCAN_ROWS}) WHERE v IS NOT NULL"
                    f" GROUP BY v ORDER BY count(*) DESC, v LIMIT {int(limit)}"
                ).fetchall()
            ]

        return catalog.assemble(
            tables,
            columns,
            keys,
            sampler=sample,
            sample_errors=(duckdb.Error,),
            sample_limit=sample_limit,
            sample_max_distinct=sample_max_distinct,
        )
    except duckdb.Error as exc:
        raise QueryExecutionError(f"Discovery failed: {exc}") from None
    finally:
        conn.close()
