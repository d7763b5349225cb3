"""The MySQL/MariaDB driver against a real server: read-only, KILL QUERY, discovery, errors."""

from __future__ import annotations

import threading
import time
import uuid
from functools import cache
from urllib.parse import urlparse

import pymysql
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
from connectors.types import ConnectionSpec, ForeignKey
from tests.services import require

DATABASE = "ps_engines_test"
SECURED_USER = "ps_engines_user"
SECURED_PASSWORD = "right-pw-'quoted\""

FIXTURE_SQL = [
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    f"USE {DATABASE}",
    "DROP VIEW IF EXISTS paid_orders",
    "DROP TABLE IF EXISTS orders",
    "DROP TABLE IF EXISTS customers",
    "DROP TABLE IF EXISTS writes",
    "DROP TABLE IF EXISTS created_by_query",
    "DROP TABLE IF EXISTS digits",
    """CREATE TABLE customers (
        id INT PRIMARY KEY,
        name VARCHAR(100) NOT NULL,
        tier ENUM('gold', 'silver') NOT NULL,
        region VARCHAR(20)
    ) COMMENT 'People who buy things'""",
    """CREATE TABLE orders (
        id INT PRIMARY KEY,
        customer_id INT NOT NULL,
        amount DECIMAL(10, 2) NOT NULL,
        status VARCHAR(20) NOT NULL,
        FOREIGN KEY (customer_id) REFERENCES customers(id)
    )""",
    "CREATE VIEW paid_orders AS SELECT * FROM orders WHERE status = 'paid'",
    "CREATE TABLE writes (id INT)",
    "CREATE TABLE digits (d INT)",
    "INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)",
]


def _customers_sql() -> list[str]:
    regions = ["north", "south", "east"]
    rows = ", ".join(
        f"({i}, 'customer {i}', '{'gold' if i % 2 else 'silver'}', '{regions[i % 3]}')" for i in range(1, 31)
    )
    orders = ", ".join(f"({i}, {1 + i % 30}, {i * 3}.25, '{'paid' if i % 2 else 'shipped'}')" for i in range(1, 61))
    return [f"INSERT INTO customers VALUES {rows}", f"INSERT INTO orders VALUES {orders}", "ANALYZE TABLE customers"]


def _spec_from_url(url: str, **overrides) -> ConnectionSpec:
    parsed = urlparse(url)
    values = {
        "engine": "mysql",
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 3306,
        "database": DATABASE,
        "user": parsed.username or "root",
        "password": parsed.password or "",
    }
    return ConnectionSpec(**{**values, **overrides})


def _admin(spec: ConnectionSpec) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=spec.host, port=spec.port, user=spec.user, password=spec.password, autocommit=True, database=None
    )


@cache
def _prepare(url: str) -> ConnectionSpec:
    spec = _spec_from_url(url)
    conn = _admin(spec)
    try:
        with conn.cursor() as cur:
            for statement in [*FIXTURE_SQL, *_customers_sql()]:
                cur.execute(statement)
            cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (SECURED_USER, SECURED_PASSWORD))
            cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (SECURED_USER, SECURED_PASSWORD))
            cur.execute(f"GRANT SELECT ON {DATABASE}.* TO %s@'%%'", (SECURED_USER,))
    finally:
        conn.close()
    return spec


@pytest.fixture(scope="module")
def my_spec() -> ConnectionSpec:
    return _prepare(require("mysql"))


def _running(spec: ConnectionSpec, marker: str) -> list[tuple]:
    conn = _admin(spec)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT ID, COMMAND, INFO FROM information_schema.PROCESSLIST"
                " WHERE ID <> CONNECTION_ID() AND INFO LIKE %s",
                (f"%{marker}%",),
            )
            return list(cur.fetchall())
    finally:
        conn.close()


def _wait_until_gone(spec: ConnectionSpec, marker: str) -> list[tuple]:
    # An upper bound for the server to finish killing, not a timing assertion.
    for _ in range(40):
        running = _running(spec, marker)
        if not running:
            return []
        time.sleep(0.05)
    return running


def _count(spec: ConnectionSpec, sql: str) -> int:
    conn = _admin(spec)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_it_returns_rows_with_readable_types(my_spec):
    columns, rows = execute(
        my_spec,
        "SELECT c.id, c.name, o.amount, c.tier, CAST('2024-01-02' AS DATE) AS d, 1.5e0 AS f, 12345678901 AS b"
        " FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.id LIMIT 1",
        timeout_ms=5000,
        max_rows=10,
    )
    assert [c.type for c in columns] == ["integer", "varchar", "decimal", "char", "date", "double", "bigint"]
    assert len(rows) == 1


def test_it_fetches_at_most_max_rows_and_stops_the_rest_on_the_server(my_spec):
    marker = f"rows_{uuid.uuid4().hex}"
    _, rows = execute(
        my_spec,
        f"SELECT a.d, b.d, c.d, e.d, f.d /* {marker} */ FROM digits a, digits b, digits c, digits e, digits f",
        timeout_ms=10000,
        max_rows=15,
    )
    assert len(rows) == 15
    assert _wait_until_gone(my_spec, marker) == []


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO writes VALUES (1)",
        "CREATE TABLE created_by_query (id INT)",  # DDL would commit implicitly; the session stays read-only
        "UPDATE customers SET name = 'x'",
    ],
)
def test_it_refuses_writes_even_without_sql_validation(my_spec, sql):
    with pytest.raises(QueryExecutionError, match="READ ONLY"):
        execute(my_spec, sql, timeout_ms=5000, max_rows=10)
    assert _count(my_spec, f"SELECT COUNT(*) FROM {DATABASE}.writes") == 0
    assert (
        _count(
            my_spec,
            "SELECT COUNT(*) FROM information_schema.TABLES"
            f" WHERE TABLE_SCHEMA = '{DATABASE}' AND TABLE_NAME = 'created_by_query'",
        )
        == 0
    )


def test_timeout_stops_the_query_on_the_server(my_spec):
    marker = f"timeout_{uuid.uuid4().hex}"
    with pytest.raises(QueryTimeout):
        execute(my_spec, f"SELECT SLEEP(5) /* {marker} */", timeout_ms=300, max_rows=10)
    assert _wait_until_gone(my_spec, marker) == []


def test_cancel_event_kills_the_query_on_the_server(my_spec):
    marker = f"cancel_{uuid.uuid4().hex}"
    cancel = threading.Event()
    seen: list[dict] = []

    def connected(info: dict) -> None:
        seen.append(info)
        threading.Timer(0.3, cancel.set).start()

    with pytest.raises(QueryCancelled):
        execute(
            my_spec,
            f"SELECT SLEEP(5) /* {marker} */",
            timeout_ms=20000,
            max_rows=10,
            cancel_event=cancel,
            on_connected=connected,
        )
    assert isinstance(seen[0]["connection_id"], int)
    assert _wait_until_gone(my_spec, marker) == []


def test_on_connected_receives_the_connection_id(my_spec):
    seen: list[dict] = []
    _, rows = execute(my_spec, "SELECT CONNECTION_ID()", timeout_ms=5000, max_rows=1, on_connected=seen.append)
    assert seen == [{"connection_id": rows[0][0]}]


def test_stream_reads_unbuffered_in_batches(my_spec):
    sql = "SELECT a.d * 100 + b.d * 10 + c.d AS n FROM digits a, digits b, digits c ORDER BY n"
    with stream(my_spec, sql, timeout_ms=10000, max_rows=500, batch_size=64) as (columns, rows):
        assert [c.name for c in columns] == ["n"]
        values = [row[0] for row in rows]
    assert values == list(range(500))


def test_connection_reports_version(my_spec):
    result = test_connection(my_spec)
    assert result.ok
    assert result.server_version
    assert result.error_message is None


def test_wrong_password_is_an_authentication_failure_without_the_password(my_spec):
    spec = _spec_from_url(require("mysql"), user=SECURED_USER, password="wrong-pw-never-shown")
    result = test_connection(spec)
    assert result.error_code == "DATA_SOURCE_UNAVAILABLE"
    assert result.error_message == f"Authentication failed for user '{SECURED_USER}'"
    with pytest.raises(DataSourceUnavailable) as caught:
        execute(spec, "SELECT 1", timeout_ms=1000, max_rows=1)
    assert "wrong-pw-never-shown" not in caught.value.message


def test_the_right_password_with_quotes_connects(my_spec):
    spec = _spec_from_url(require("mysql"), user=SECURED_USER, password=SECURED_PASSWORD)
    assert test_connection(spec).ok


def test_missing_database_is_unavailable(my_spec):
    spec = _spec_from_url(require("mysql"), database="ps_engines_no_such_db")
    with pytest.raises(DataSourceUnavailable, match="Database 'ps_engines_no_such_db' does not exist"):
        execute(spec, "SELECT 1", timeout_ms=1000, max_rows=1)


def test_closed_port_is_unavailable(my_spec):
    spec = ConnectionSpec(engine="mysql", host="127.0.0.1", port=1, user="root", password="pw-never-shown")
    result = test_connection(spec, timeout_s=2)
    assert result.error_code == "DATA_SOURCE_UNAVAILABLE"
    assert result.error_message.startswith("Cannot reach 127.0.0.1:1")
    assert "pw-never-shown" not in result.error_message


def test_execution_errors_carry_the_server_message(my_spec):
    with pytest.raises(QueryExecutionError, match="doesn't exist"):
        execute(my_spec, "SELECT * FROM nope", timeout_ms=5000, max_rows=1)


def test_discover_reads_tables_views_keys_estimates_and_samples(my_spec):
    tables = {t.name: t for t in discover(my_spec, sample_max_distinct=10)}
    assert set(tables) == {"customers", "orders", "paid_orders", "writes", "digits"}
    assert {t.schema for t in tables.values()} == {DATABASE}

    customers = tables["customers"]
    assert customers.description == "People who buy things"
    assert customers.row_estimate == 30
    assert customers.column("id").is_primary_key
    assert not customers.column("name").nullable
    assert customers.column("name").data_type == "varchar(100)"
    assert customers.column("name").sample_values == ()  # 30 distinct > 10
    assert sorted(customers.column("region").sample_values) == ["east", "north", "south"]
    assert sorted(customers.column("tier").sample_values) == ["gold", "silver"]

    orders = tables["orders"]
    assert orders.column("customer_id").foreign_key == ForeignKey(DATABASE, "customers", "id")
    assert orders.column("amount").data_type == "decimal(10,2)"

    assert tables["paid_orders"].kind == "view"
    assert tables["paid_orders"].row_estimate is None


def test_discover_skips_system_schemas_without_a_database(my_spec):
    spec = ConnectionSpec(**{**my_spec.__dict__, "database": ""})
    schemas = {t.schema for t in discover(spec, sample_limit=0)}
    assert DATABASE in schemas
    assert not schemas & {"mysql", "information_schema", "performance_schema", "sys"}
