"""The SQLite and DuckDB drivers on temporary files: read-only, deadlines, cancellation, discovery."""

from __future__ import annotations

import sqlite3
import threading

import duckdb as duckdb_lib
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

ENDLESS_SQLITE = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
ENDLESS_DUCKDB = "SELECT sum(i) FROM range(1000000000000) t(i)"

SCHEMA_SQL = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, region VARCHAR(20), score DOUBLE)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),"
    " amount DECIMAL(10,2), status VARCHAR(20))",
    "CREATE VIEW paid_orders AS SELECT * FROM orders WHERE status = 'paid'",
]


def _fill(conn) -> None:
    regions = ["north", "south", "east"]
    for statement in SCHEMA_SQL:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?)",
        [(i, f"customer {i}", regions[i % 3], i / 2) for i in range(1, 31)],
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?)",
        [(i, 1 + i % 30, i * 2.5, "paid" if i % 2 else "shipped") for i in range(1, 61)],
    )


@pytest.fixture
def sqlite_spec(tmp_path) -> ConnectionSpec:
    path = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(path)
    _fill(conn)
    conn.commit()
    conn.close()
    return ConnectionSpec(engine="sqlite", path=str(path))


@pytest.fixture
def duckdb_spec(tmp_path) -> ConnectionSpec:
    path = tmp_path / "shop.duckdb"
    conn = duckdb_lib.connect(str(path))
    _fill(conn)
    conn.close()
    return ConnectionSpec(engine="duckdb", path=str(path))


@pytest.fixture(params=["sqlite", "duckdb"])
def file_spec(request) -> ConnectionSpec:
    return request.getfixturevalue(f"{request.param}_spec")


def _endless(spec: ConnectionSpec) -> str:
    return ENDLESS_SQLITE if spec.engine == "sqlite" else ENDLESS_DUCKDB


def test_it_returns_rows_and_types(file_spec):
    columns, rows = execute(file_spec, "SELECT id, name, score FROM customers ORDER BY id", timeout_ms=5000, max_rows=5)
    assert [c.name for c in columns] == ["id", "name", "score"]
    assert [c.type for c in columns] == ["integer", "text" if file_spec.engine == "sqlite" else "varchar", "double"]
    assert rows == [(i, f"customer {i}", i / 2) for i in range(1, 6)]


def test_it_fetches_at_most_max_rows(file_spec):
    _, rows = execute(file_spec, "SELECT a.id FROM customers a, customers b", timeout_ms=5000, max_rows=7)
    assert len(rows) == 7


@pytest.mark.parametrize("sql", ["INSERT INTO customers (id, name) VALUES (99, 'x')", "CREATE TABLE t2 (id INT)"])
def test_it_refuses_writes(file_spec, sql):
    with pytest.raises(QueryExecutionError):
        execute(file_spec, sql, timeout_ms=5000, max_rows=1)
    _, rows = execute(file_spec, "SELECT count(*) FROM customers", timeout_ms=5000, max_rows=1)
    assert rows == [(30,)]


def test_sqlite_file_itself_is_opened_read_only(sqlite_spec):
    from connectors.engines import sqlite

    conn = sqlite.connect(sqlite_spec)  # without the query authorizer: mode=ro alone refuses the write
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("INSERT INTO customers (id, name) VALUES (99, 'x')")
    conn.close()


def test_sqlite_queries_cannot_attach_other_files(sqlite_spec, tmp_path):
    with pytest.raises(QueryExecutionError, match="not authorized"):
        execute(sqlite_spec, f"ATTACH '{tmp_path / 'other.db'}' AS other", timeout_ms=5000, max_rows=1)


def test_duckdb_queries_cannot_read_other_files(duckdb_spec):
    with pytest.raises(QueryExecutionError, match="disabled by configuration"):
        execute(duckdb_spec, "SELECT * FROM read_csv('/etc/passwd')", timeout_ms=5000, max_rows=1)
    with pytest.raises(QueryExecutionError, match="locked"):
        execute(duckdb_spec, "SET enable_external_access = true", timeout_ms=5000, max_rows=1)


def test_timeout_interrupts_the_query(file_spec):
    with pytest.raises(QueryTimeout):
        execute(file_spec, _endless(file_spec), timeout_ms=300, max_rows=1)


def test_cancel_event_interrupts_the_query(file_spec):
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(QueryCancelled):
        execute(file_spec, _endless(file_spec), timeout_ms=30000, max_rows=1, cancel_event=cancel)


def test_an_already_set_cancel_event_runs_nothing(file_spec):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(QueryCancelled):
        execute(file_spec, "SELECT 1", timeout_ms=5000, max_rows=1, cancel_event=cancel)


def test_stream_yields_every_row_up_to_max_rows(file_spec):
    sql = "SELECT a.id AS a, b.id AS b FROM customers a, customers b ORDER BY a.id, b.id"
    with stream(file_spec, sql, timeout_ms=5000, max_rows=700, batch_size=64) as (columns, rows):
        assert [c.name for c in columns] == ["a", "b"]
        collected = list(rows)
    assert len(collected) == 700
    assert collected[0] == (1, 1)
    assert collected[-1] == (24, 10)


def test_missing_file_is_unavailable(tmp_path):
    for engine in ("sqlite", "duckdb"):
        spec = ConnectionSpec(engine=engine, path=str(tmp_path / "missing.db"))
        with pytest.raises(DataSourceUnavailable, match="does not exist"):
            execute(spec, "SELECT 1", timeout_ms=1000, max_rows=1)
        result = test_connection(spec)
        assert result.error_code == "DATA_SOURCE_UNAVAILABLE"


def test_a_file_that_is_not_a_database_is_unavailable(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello " * 1000)
    for engine in ("sqlite", "duckdb"):
        result = test_connection(ConnectionSpec(engine=engine, path=str(path)))
        assert result.error_code == "DATA_SOURCE_UNAVAILABLE"


def test_connection_reports_version(file_spec):
    result = test_connection(file_spec)
    assert result.ok
    assert result.server_version.startswith("SQLite" if file_spec.engine == "sqlite" else "DuckDB")


def test_discover_reads_tables_views_keys_counts_and_samples(file_spec):
    tables = {t.name: t for t in discover(file_spec, sample_max_distinct=10)}
    assert set(tables) == {"customers", "orders", "paid_orders"}
    assert {t.schema for t in tables.values()} == {"main"}

    customers = tables["customers"]
    assert customers.row_estimate == 30
    assert customers.column("id").is_primary_key
    assert not customers.column("name").nullable
    assert sorted(customers.column("region").sample_values) == ["east", "north", "south"]
    assert customers.column("name").sample_values == ()  # 30 distinct > 10

    orders = tables["orders"]
    assert orders.column("customer_id").foreign_key == ForeignKey("main", "customers", "id")
    assert sorted(orders.column("status").sample_values) == ["paid", "shipped"]

    assert tables["paid_orders"].kind == "view"
    assert discover(file_spec, schemas=["other"]) == []
