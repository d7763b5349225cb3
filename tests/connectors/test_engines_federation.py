"""Federated queries: one in-memory DuckDB attaching PostgreSQL, MariaDB and SQLite read-only."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from connectors.engines import (
    DataSourceUnavailable,
    QueryCancelled,
    QueryExecutionError,
    QueryTimeout,
    execute_federated,
    stream_federated,
)
from connectors.engines.federation import extension_path
from connectors.types import ConnectionSpec
from tests.connectors import test_engines_mysql, test_engines_postgres
from tests.services import require

ENDLESS = "SELECT sum(i) FROM range(1000000000000) t(i)"


@pytest.fixture(scope="module")
def pg_spec() -> ConnectionSpec:
    return test_engines_postgres._prepare(require("postgres"))


@pytest.fixture(scope="module")
def my_spec() -> ConnectionSpec:
    return test_engines_mysql._prepare(require("mysql"))


@pytest.fixture
def sqlite_spec(tmp_path) -> ConnectionSpec:
    path = tmp_path / "regions.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE regions (code TEXT PRIMARY KEY, manager TEXT NOT NULL)")
    conn.executemany("INSERT INTO regions VALUES (?, ?)", [("north", "Nora"), ("south", "Sam"), ("east", "Eve")])
    conn.commit()
    conn.close()
    return ConnectionSpec(engine="sqlite", path=str(path))


def test_extensions_come_from_the_installed_wheels():
    for engine in ("postgres", "mysql", "sqlite"):
        path = extension_path(engine)
        assert path.is_file()
        assert "site-packages" in path.parts


def test_it_joins_postgres_and_mariadb(pg_spec, my_spec):
    columns, rows = execute_federated(
        {"pg": pg_spec, "my": my_spec},
        "SELECT p.id, p.region, m.tier FROM pg.shop.customers p"
        " JOIN my.ps_engines_test.customers m ON m.id = p.id WHERE p.id <= 4 ORDER BY p.id",
        timeout_ms=20000,
        max_rows=100,
    )
    assert [c.name for c in columns] == ["id", "region", "tier"]
    assert [c.type for c in columns][0] == "integer"
    assert rows == [(1, "south", "gold"), (2, "east", "silver"), (3, "north", "gold"), (4, "south", "silver")]


def test_it_joins_postgres_and_sqlite_with_a_filter_on_postgres(pg_spec, sqlite_spec):
    columns, rows = execute_federated(
        {"pg": pg_spec, "lite": sqlite_spec},
        "SELECT r.manager, count(*) AS customers FROM pg.shop.customers c"
        " JOIN lite.main.regions r ON r.code = c.region WHERE c.region = 'north' GROUP BY r.manager",
        timeout_ms=20000,
        max_rows=100,
    )
    assert [c.name for c in columns] == ["manager", "customers"]
    assert rows == [("Nora", 10)]


def test_it_returns_at_most_max_rows(pg_spec, sqlite_spec):
    _, rows = execute_federated(
        {"pg": pg_spec, "lite": sqlite_spec}, "SELECT id FROM pg.shop.big", timeout_ms=20000, max_rows=11
    )
    assert len(rows) == 11


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
        ("ATTACH '/tmp/ps_engines_other.duckdb' AS other", "disabled by configuration"),
        ("ATTACH 'host=127.0.0.1 dbname=postgres user=postgres' AS other (TYPE postgres)", "disabled"),
        ("COPY (SELECT 1) TO '/tmp/ps_engines_copy.csv'", "disabled by configuration"),
        ("INSTALL httpfs", "disabled by configuration"),
        ("INSERT INTO pg.shop.writes VALUES (1)", "read-only"),
        ("INSERT INTO my.ps_engines_test.writes VALUES (1)", "read-only"),
        ("INSERT INTO lite.main.regions VALUES ('west', 'Wes')", "read-only"),
        ("SET enable_external_access = true", "locked"),
        ("LOAD '/tmp/whatever.duckdb_extension'", "disabled"),
    ],
)
def test_user_sql_cannot_escape_the_sandbox(pg_spec, my_spec, sqlite_spec, sql, why):
    specs = {"pg": pg_spec, "my": my_spec, "lite": sqlite_spec}
    with pytest.raises(QueryExecutionError, match=why):
        execute_federated(specs, sql, timeout_ms=10000, max_rows=10)
    _, rows = execute_federated(specs, "SELECT count(*) FROM lite.main.regions", timeout_ms=10000, max_rows=1)
    assert rows == [(3,)]


def test_passwords_are_not_visible_to_queries(my_spec):
    secured = ConnectionSpec(
        **{
            **my_spec.__dict__,
            "user": test_engines_mysql.SECURED_USER,
            "password": test_engines_mysql.SECURED_PASSWORD,
        }
    )
    specs = {"my": secured}
    _, rows = execute_federated(
        specs, "SELECT count(*) FROM my.ps_engines_test.customers", timeout_ms=10000, max_rows=1
    )
    assert rows == [(30,)]
    _, databases = execute_federated(specs, "SELECT path FROM duckdb_databases()", timeout_ms=10000, max_rows=10)
    _, secrets = execute_federated(specs, "SELECT secret_string FROM duckdb_secrets()", timeout_ms=10000, max_rows=10)
    shown = repr(databases) + repr(secrets)
    assert "right-pw" not in shown


def test_an_unreachable_source_is_unavailable_without_its_password():
    spec = ConnectionSpec(engine="postgres", host="127.0.0.1", port=1, database="x", user="u", password="pw-hidden")
    with pytest.raises(DataSourceUnavailable) as caught:
        execute_federated({"pg": spec}, "SELECT 1", timeout_ms=5000, max_rows=1)
    assert caught.value.message.startswith("Source 'pg': Cannot reach 127.0.0.1:1")
    assert "pw-hidden" not in caught.value.message


def test_a_wrong_mariadb_password_is_unavailable_without_it(my_spec):
    spec = ConnectionSpec(
        **{**my_spec.__dict__, "user": test_engines_mysql.SECURED_USER, "password": "wrong-pw-hidden"}
    )
    with pytest.raises(DataSourceUnavailable) as caught:
        execute_federated({"my": spec}, "SELECT 1", timeout_ms=5000, max_rows=1)
    assert "Authentication failed" in caught.value.message
    assert "wrong-pw-hidden" not in caught.value.message


def test_a_missing_sqlite_file_is_unavailable(tmp_path):
    spec = ConnectionSpec(engine="sqlite", path=str(tmp_path / "missing.sqlite"))
    with pytest.raises(DataSourceUnavailable, match="does not exist"):
        execute_federated({"lite": spec}, "SELECT 1", timeout_ms=5000, max_rows=1)


def test_bad_aliases_are_rejected(sqlite_spec):
    for alias in ("memory", "a b", "x;DROP", ""):
        with pytest.raises(ValueError, match="alias"):
            execute_federated({alias: sqlite_spec}, "SELECT 1", timeout_ms=5000, max_rows=1)


def test_timeout_interrupts_the_query(sqlite_spec):
    with pytest.raises(QueryTimeout):
        execute_federated({"lite": sqlite_spec}, ENDLESS, timeout_ms=300, max_rows=1)


def test_cancel_event_interrupts_the_query(sqlite_spec):
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(QueryCancelled):
        execute_federated({"lite": sqlite_spec}, ENDLESS, timeout_ms=30000, max_rows=1, cancel_event=cancel)


def test_stream_federated_yields_batches(pg_spec, sqlite_spec):
    with stream_federated(
        {"pg": pg_spec, "lite": sqlite_spec},
        "SELECT id FROM pg.shop.big WHERE id <= 1000 ORDER BY id",
        timeout_ms=20000,
        max_rows=500,
        batch_size=64,
    ) as (columns, rows):
        assert [c.name for c in columns] == ["id"]
        values = [row[0] for row in rows]
    assert values == list(range(1, 501))


def test_timeout_also_stops_the_statement_on_postgres(pg_spec):
    # DuckDB's interrupt() cannot reach a statement already sent to PostgreSQL; the scanner's
    # connections carry statement_timeout so the server stops it too.
    marker = "fed_timeout_marker"
    with pytest.raises(QueryTimeout):
        execute_federated(
            {"pg": pg_spec},
            f"SELECT * FROM postgres_query('pg', 'SELECT pg_sleep(5) /* {marker} */')",
            timeout_ms=300,
            max_rows=1,
        )
    assert test_engines_postgres._wait_until_gone(pg_spec, marker) == []
