"""The PostgreSQL driver against a real server: read-only, server-side cancellation, discovery, errors.

PostgreSQL here runs with trust authentication, so a wrong password cannot be provoked against
it; the authentication-failure wording is covered with the server's own message text instead,
and for real against MariaDB in test_engines_mysql.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from functools import cache
from urllib.parse import urlparse

import psycopg
import pytest

from connectors.engines import (
    DataSourceUnavailable,
    QueryCancelled,
    QueryExecutionError,
    QueryTimeout,
    discover,
    execute,
    stream,
    test_connection,
)
from connectors.engines.postgres import classify_connect_error
from connectors.types import ConnectionSpec, ForeignKey
from tests.services import require

DATABASE = "ps_engines_test"

FIXTURE_SQL = """
DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email varchar(200),
    region text,
    created_at timestamptz NOT NULL DEFAULT '2024-01-02T03:04:05Z'
);
COMMENT ON TABLE shop.customers IS 'People who buy things';
CREATE TABLE shop.orders (
    id serial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES shop.customers(id),
    amount numeric(10, 2) NOT NULL,
    status text NOT NULL,
    ordered_on date NOT NULL
);
CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE amount > 100;
CREATE TABLE shop.writes (id int);
CREATE FUNCTION shop.sneaky_write() RETURNS int LANGUAGE sql AS 'INSERT INTO shop.writes VALUES (1) RETURNING 1';
INSERT INTO shop.customers (name, email, region)
    SELECT 'customer ' || g, 'c' || g || '@example.com', (ARRAY['north', 'south', 'east'])[1 + g % 3]
    FROM generate_series(1, 30) g;
INSERT INTO shop.orders (customer_id, amount, status, ordered_on)
    SELECT 1 + g % 30, (g * 7 % 300)::numeric + 0.5, (ARRAY['paid', 'shipped'])[1 + g % 2], DATE '2024-01-01' + g
    FROM generate_series(1, 90) g;
CREATE TABLE shop.big AS SELECT g AS id, (g % 3)::text AS bucket FROM generate_series(1, 50000) g;
ANALYZE shop.customers; ANALYZE shop.orders; ANALYZE shop.big;
"""


def _spec_from_url(url: str, *, database: str, **overrides) -> ConnectionSpec:
    parsed = urlparse(url)
    values = {
        "engine": "postgres",
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "database": database,
        "user": parsed.username or "postgres",
        "password": parsed.password or "",
    }
    return ConnectionSpec(**{**values, **overrides})


@cache
def _prepare(url: str) -> ConnectionSpec:
    admin = _spec_from_url(url, database=urlparse(url).path.lstrip("/") or "postgres")
    with psycopg.connect(
        host=admin.host,
        port=admin.port,
        dbname=admin.database,
        user=admin.user,
        password=admin.password or None,
        autocommit=True,
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    spec = _spec_from_url(url, database=DATABASE)
    with psycopg.connect(
        host=spec.host, port=spec.port, dbname=DATABASE, user=spec.user, password=spec.password or None, autocommit=True
    ) as conn:
        conn.execute(FIXTURE_SQL)
    return spec


@pytest.fixture(scope="module")
def pg_spec() -> ConnectionSpec:
    return _prepare(require("postgres"))


def _admin(spec: ConnectionSpec) -> psycopg.Connection:
    return psycopg.connect(
        host=spec.host,
        port=spec.port,
        dbname=spec.database,
        user=spec.user,
        password=spec.password or None,
        autocommit=True,
    )


def _running_queries(spec: ConnectionSpec, marker: str) -> list[tuple]:
    with _admin(spec) as conn:
        return conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND state = 'active' AND position(%s in query) > 0",
            [marker],
        ).fetchall()


def _wait_until_gone(spec: ConnectionSpec, marker: str) -> list[tuple]:
    # An upper bound for the server to finish tearing down, not a timing assertion.
    for _ in range(40):
        running = _running_queries(spec, marker)
        if not running:
            return []
        time.sleep(0.05)
    return running


def test_it_returns_rows_with_readable_types(pg_spec):
    columns, rows = execute(
        pg_spec,
        "SELECT c.id, c.name, o.amount, o.ordered_on, c.created_at, true AS flag, 2::bigint AS big, 1.5::float8 AS d"
        " FROM shop.customers c JOIN shop.orders o ON o.customer_id = c.id ORDER BY o.id LIMIT 1",
        timeout_ms=5000,
        max_rows=10,
    )
    assert [c.type for c in columns] == [
        "integer",
        "text",
        "numeric",
        "date",
        "timestamptz",
        "boolean",
        "bigint",
        "double",
    ]
    assert [c.name for c in columns][:2] == ["id", "name"]
    assert len(rows) == 1


def test_it_fetches_at_most_max_rows(pg_spec):
    columns, rows = execute(pg_spec, "SELECT g FROM generate_series(1, 1000000) g", timeout_ms=10000, max_rows=25)
    assert len(rows) == 25
    assert rows[0] == (1,)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO shop.writes VALUES (1)",
        "CREATE TABLE shop.created_by_query (id int)",
        "SELECT shop.sneaky_write()",  # a write the SQL validator could not see
    ],
)
def test_it_refuses_writes_even_without_sql_validation(pg_spec, sql):
    with pytest.raises(QueryExecutionError):
        execute(pg_spec, sql, timeout_ms=5000, max_rows=10)
    with _admin(pg_spec) as conn:
        assert conn.execute("SELECT count(*) FROM shop.writes").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('shop.created_by_query')").fetchone() == (None,)


def test_hidden_write_is_refused_by_the_read_only_transaction(pg_spec):
    with pytest.raises(QueryExecutionError, match="read-only transaction"):
        execute(pg_spec, "SELECT shop.sneaky_write()", timeout_ms=5000, max_rows=10)


def test_timeout_cancels_the_query_on_the_server(pg_spec):
    marker = f"timeout_{uuid.uuid4().hex}"
    with pytest.raises(QueryTimeout) as caught:
        execute(pg_spec, f"SELECT pg_sleep(5) /* {marker} */", timeout_ms=300, max_rows=10)
    assert caught.value.code == "QUERY_TIMEOUT"
    assert _wait_until_gone(pg_spec, marker) == []


def test_cancel_event_cancels_the_query_on_the_server(pg_spec):
    marker = f"cancel_{uuid.uuid4().hex}"
    cancel = threading.Event()
    seen: list[dict] = []

    def connected(info: dict) -> None:
        seen.append(info)
        threading.Timer(0.3, cancel.set).start()

    with pytest.raises(QueryCancelled) as caught:
        execute(
            pg_spec,
            f"SELECT pg_sleep(5) /* {marker} */",
            timeout_ms=20000,
            max_rows=10,
            cancel_event=cancel,
            on_connected=connected,
        )
    assert caught.value.code == "CANCELLED"
    assert isinstance(seen[0]["backend_pid"], int)
    assert _wait_until_gone(pg_spec, marker) == []


def test_on_connected_receives_the_backend_pid(pg_spec):
    seen: list[dict] = []
    _, rows = execute(pg_spec, "SELECT pg_backend_pid()", timeout_ms=5000, max_rows=1, on_connected=seen.append)
    assert seen == [{"backend_pid": rows[0][0]}]


def test_stream_reads_through_a_server_side_cursor_in_batches(pg_spec):
    with stream(
        pg_spec, "SELECT id, bucket FROM shop.big ORDER BY id", timeout_ms=10000, max_rows=1234, batch_size=100
    ) as (columns, rows):
        assert [c.name for c in columns] == ["id", "bucket"]
        with _admin(pg_spec) as conn:  # while streaming, the cursor lives on the server
            cursors = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'FETCH FORWARD 100 FROM%%'"
                " OR query LIKE 'DECLARE%%shop.big%%'"
            ).fetchone()[0]
        first = next(rows)
        remaining = sum(1 for _ in rows)
    assert first == (1, "1")
    assert remaining == 1233
    assert cursors >= 1


def test_stream_times_out_like_execute(pg_spec):
    with pytest.raises(QueryTimeout), stream(pg_spec, "SELECT pg_sleep(5)", timeout_ms=300, max_rows=10) as (_, rows):
        list(rows)


def test_connection_reports_version_and_latency(pg_spec):
    result = test_connection(pg_spec)
    assert result.ok
    assert result.server_version.startswith("PostgreSQL ")
    assert result.latency_ms >= 0
    assert result.error_code is None


def test_closed_port_is_unavailable_and_never_shows_the_password(pg_spec):
    spec = _spec_from_url("postgresql://postgres@127.0.0.1:1/x", database="x", password="pw-never-shown")
    result = test_connection(spec, timeout_s=2)
    assert not result.ok
    assert result.error_code == "DATA_SOURCE_UNAVAILABLE"
    assert result.error_message.startswith("Cannot reach 127.0.0.1:1")
    assert "pw-never-shown" not in result.error_message
    with pytest.raises(DataSourceUnavailable, match="Cannot reach 127.0.0.1:1"):
        execute(spec, "SELECT 1", timeout_ms=1000, max_rows=1)


def test_unknown_host_is_unavailable(pg_spec):
    result = test_connection(
        ConnectionSpec(engine="postgres", host="no-such-host.invalid", port=5432, user="x"), timeout_s=2
    )
    assert result.error_code == "DATA_SOURCE_UNAVAILABLE"
    assert result.error_message.startswith("Cannot reach no-such-host.invalid:5432")


def test_missing_database_is_unavailable(pg_spec):
    spec = _spec_from_url("postgresql://postgres@127.0.0.1:5432/", database="ps_engines_no_such_db")
    with pytest.raises(DataSourceUnavailable, match="Database 'ps_engines_no_such_db' does not exist"):
        execute(spec, "SELECT 1", timeout_ms=1000, max_rows=1)


def test_wrong_password_message_names_the_user():
    # Trust authentication here: the server's wording is exercised, a real wrong password is not.
    spec = ConnectionSpec(engine="postgres", host="db", user="alice", password="hunter2")
    error = classify_connect_error(spec, 'connection failed: FATAL:  password authentication failed for user "alice"')
    assert error.message == "Authentication failed for user 'alice'"


def test_execution_errors_keep_the_database_message_without_the_password(pg_spec):
    spec = ConnectionSpec(**{**pg_spec.__dict__, "password": "pw-in-query"})
    with pytest.raises(QueryExecutionError) as caught:
        execute(spec, "SELECT 'pw-in-query'::int", timeout_ms=5000, max_rows=1)
    assert "invalid input syntax for type integer" in caught.value.message
    assert "pw-in-query" not in caught.value.message
    with pytest.raises(QueryExecutionError, match="does not exist"):
        execute(pg_spec, "SELECT * FROM shop.nope", timeout_ms=5000, max_rows=1)


def test_discover_reads_tables_views_keys_estimates_and_samples(pg_spec):
    tables = {(t.schema, t.name): t for t in discover(pg_spec, sample_max_distinct=10)}
    assert {("shop", "customers"), ("shop", "orders"), ("shop", "big_orders"), ("shop", "big")} <= set(tables)
    assert not any(schema.startswith("pg_") or schema == "information_schema" for schema, _ in tables)

    customers = tables[("shop", "customers")]
    assert customers.kind == "table"
    assert customers.description == "People who buy things"
    assert customers.row_estimate == 30
    assert customers.column("id").is_primary_key
    assert not customers.column("name").nullable
    assert customers.column("email").data_type == "character varying(200)"
    assert sorted(customers.column("region").sample_values) == ["east", "north", "south"]
    assert customers.column("name").sample_values == ()  # 30 distinct names is more than 10

    orders = tables[("shop", "orders")]
    assert orders.column("customer_id").foreign_key == ForeignKey("shop", "customers", "id")
    assert orders.column("amount").data_type == "numeric(10,2)"
    assert sorted(orders.column("status").sample_values) == ["paid", "shipped"]

    view = tables[("shop", "big_orders")]
    assert view.kind == "view"
    assert view.row_estimate is None
    assert [c.name for c in view.columns] == ["id", "customer_id", "amount", "status", "ordered_on"]

    assert sorted(tables[("shop", "big")].column("bucket").sample_values) == ["0", "1", "2"]


def test_discover_limits_schemas_and_sample_counts(pg_spec):
    tables = discover(pg_spec, schemas=["shop"], sample_limit=2, sample_max_distinct=10)
    assert {t.schema for t in tables} == {"shop"}
    region = next(t for t in tables if t.name == "customers").column("region")
    assert len(region.sample_values) == 2
    assert discover(pg_spec, schemas=["no_such_schema"]) == []
