"""The one governed path to data, end to end on real engines: SQLite (the demo sales data),
PostgreSQL, MariaDB, and DuckDB federation across them. Access, validation, row policies,
limits, read-only execution, server-side timeouts and lineage-aware masking."""

from __future__ import annotations

import inspect
import re
import sqlite3
import time
import uuid
from datetime import date
from itertools import islice
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pymysql
import pytest

from accounts.models import Membership
from connectors.demo_data import generate_sales_db
from connectors.discovery import discovery_run
from connectors.errors import (
    DataSourceUnavailableError,
    PolicyViolation,
    QueryTimeoutError,
    SqlValidationFailed,
)
from connectors.governed import GovernedRequest, governed_execute, governed_prepare, governed_stream
from connectors.models import CatalogColumn, DataSource, MaskingStyle, RowPolicy, SourceAccess
from tests.factories import DataSourceFactory, MembershipFactory
from tests.services import require

pytestmark = pytest.mark.django_db

DATABASE = "ps_governed_test"
PARTIAL_EMAIL = re.compile(r"^[a-z0-9]\*\*\*@example\.com$")

PG_FIXTURE_SQL = """
DROP SCHEMA IF EXISTS hr CASCADE;
DROP TABLE IF EXISTS orders, customers, regions, numbers CASCADE;
CREATE SCHEMA hr;
CREATE TABLE regions (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (
    id int PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    region_id int NOT NULL REFERENCES regions(id),
    segment text NOT NULL
);
CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers(id),
    amount numeric(10, 2) NOT NULL,
    status text NOT NULL
);
CREATE TABLE numbers (n int PRIMARY KEY, label text NOT NULL);
CREATE TABLE hr.salaries (employee text NOT NULL, salary int NOT NULL);
INSERT INTO regions VALUES (1, 'North'), (2, 'South'), (3, 'East');
INSERT INTO customers
    SELECT g, 'Customer ' || g, 'person' || g || '@example.com', 1 + g % 3, (ARRAY['retail', 'wholesale'])[1 + g % 2]
    FROM generate_series(1, 30) g;
INSERT INTO orders SELECT g, 1 + g % 30, (g * 7 % 300) + 0.5, (ARRAY['paid', 'shipped'])[1 + g % 2]
    FROM generate_series(1, 90) g;
INSERT INTO numbers SELECT g, 'n' || g FROM generate_series(1, 3000) g;
INSERT INTO hr.salaries VALUES ('Ann', 100000), ('Bob', 90000);
ANALYZE;
"""

MY_FIXTURE_SQL = [
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    f"USE {DATABASE}",
    "DROP TABLE IF EXISTS loyalty",
    "CREATE TABLE loyalty (customer_id INT PRIMARY KEY, tier VARCHAR(10) NOT NULL, points INT NOT NULL)",
    "INSERT INTO loyalty VALUES "
    + ", ".join(f"({i}, '{('gold', 'silver', 'bronze')[i % 3]}', {i * 10})" for i in range(1, 31)),
]


# --- the data sources -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sales_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sales") / "sales.sqlite3"
    generate_sales_db(path, orders=2000, today=date(2025, 6, 30))
    return path


@pytest.fixture(scope="module")
def pg_server() -> dict:
    url = urlparse(require("postgres"))
    server = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432, "user": url.username or "postgres"}
    with psycopg.connect(dbname=url.path.lstrip("/") or "postgres", autocommit=True, **server) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with psycopg.connect(dbname=DATABASE, autocommit=True, **server) as conn:
        conn.execute(PG_FIXTURE_SQL)
    return server


@pytest.fixture(scope="module")
def my_server() -> dict:
    url = urlparse(require("mysql"))
    server = {"host": url.hostname or "127.0.0.1", "port": url.port or 3306, "user": url.username or "root"}
    conn = pymysql.connect(password=url.password or "", autocommit=True, **server)
    try:
        with conn.cursor() as cur:
            for statement in MY_FIXTURE_SQL:
                cur.execute(statement)
    finally:
        conn.close()
    return server


@pytest.fixture(scope="module")
def managers_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("managers") / "managers.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE managers (region_id INTEGER PRIMARY KEY, manager TEXT NOT NULL)")
    conn.executemany("INSERT INTO managers VALUES (?, ?)", [(1, "Nora"), (2, "Sam"), (3, "Eve")])
    conn.commit()
    conn.close()
    return path


def discovered(source: DataSource, *, partial_email: bool = True) -> DataSource:
    source = discovery_run(source_id=source.pk)
    assert source.discovery_status == "succeeded", source.discovery_error
    if partial_email:
        for column in CatalogColumn.objects.filter(table__data_source=source, name="email"):
            column.masking_style = MaskingStyle.PARTIAL
            column.save()
    source.refresh_from_db()
    return source


@pytest.fixture
def sales(member, sales_file) -> DataSource:
    return discovered(DataSourceFactory(workspace=member.workspace, alias="sales", path=str(sales_file)))


@pytest.fixture
def pg(member, pg_server) -> DataSource:
    source = DataSourceFactory(
        workspace=member.workspace, alias="pg", connector_type="postgres", database=DATABASE, **_server(pg_server)
    )
    return discovered(source)


@pytest.fixture
def my(member, my_server) -> DataSource:
    source = DataSourceFactory(
        workspace=member.workspace, alias="my", connector_type="mysql", database=DATABASE, **_server(my_server)
    )
    return discovered(source)


@pytest.fixture
def lite(member, managers_file) -> DataSource:
    return discovered(DataSourceFactory(workspace=member.workspace, alias="lite", path=str(managers_file)))


def _server(server: dict) -> dict:
    return {"host": server["host"], "port": server["port"], "username": server["user"]}


@pytest.fixture
def pii_member(member) -> Membership:
    return MembershipFactory(workspace=member.workspace, role="analyst", pii_access=True)


def run(membership: Membership, sources: list[DataSource], sql: str, **kwargs):
    return governed_execute(
        GovernedRequest(membership=membership, sources=sources, sql=sql, purpose="editor", **kwargs)
    )


def region_policy(source: DataSource, table: str = "customers", **fields) -> RowPolicy:
    return RowPolicy.objects.create(
        data_source=source,
        name=f"own region on {table}",
        table_name=table,
        predicate="region_id = {{member.region_id}}",
        roles=["analyst"],
        **fields,
    )


@pytest.fixture
def north_analyst(member) -> Membership:
    member.attributes = {"region_id": 1}
    member.save()
    return member


def pg_count(server: dict, sql: str) -> int:
    with psycopg.connect(dbname=DATABASE, autocommit=True, **server) as conn:
        return conn.execute(sql).fetchone()[0]


# --- masking ----------------------------------------------------------------------------------


def test_it_masks_email_partially_for_an_analyst_without_pii_access(member, sales):
    result = run(member, [sales], "SELECT id, email FROM customers ORDER BY id LIMIT 20")
    assert result.row_count == 20
    assert all(PARTIAL_EMAIL.match(row["email"]) for row in result.rows), result.rows[:3]
    assert result.masked_columns == ["email"]
    assert "1 column masked" in result.warnings


def test_it_returns_email_in_clear_with_pii_access(pii_member, sales):
    result = run(pii_member, [sales], "SELECT id, email FROM customers ORDER BY id LIMIT 20")
    assert all("***" not in row["email"] and "@" in row["email"] for row in result.rows)
    assert result.masked_columns == []


def test_it_masks_an_email_renamed_by_an_alias(member, sales):
    result = run(member, [sales], "SELECT email AS contact FROM customers ORDER BY id LIMIT 5")
    assert result.masked_columns == ["contact"]
    assert all(PARTIAL_EMAIL.match(row["contact"]) for row in result.rows)


def test_it_masks_an_email_passed_through_a_subquery_and_an_expression(member, sales):
    sql = "SELECT lower(c) AS who FROM (SELECT email AS c FROM customers) t LIMIT 5"
    result = run(member, [sales], sql)
    assert result.masked_columns == ["who"]


def test_it_does_not_mask_a_count_of_emails(member, sales, pii_member):
    result = run(member, [sales], "SELECT COUNT(email) AS n FROM customers")
    assert result.masked_columns == []
    assert result.rows == run(pii_member, [sales], "SELECT COUNT(*) AS n FROM customers").rows


def test_it_masks_phone_fully_when_classified_so(member, sales):
    phone = CatalogColumn.objects.get(table__data_source=sales, table__name="customers", name="phone")
    assert phone.pii is True
    result = run(member, [sales], "SELECT phone FROM customers LIMIT 50")
    assert {row["phone"] for row in result.rows} - {None} == {"***MASKED***"}


def test_it_stops_masking_a_column_an_operator_unflags(member, sales):
    email = CatalogColumn.objects.get(table__data_source=sales, table__name="customers", name="email")
    email.pii = False
    email.save()
    sales.refresh_from_db()
    result = run(member, [sales], "SELECT email FROM customers LIMIT 3")
    assert result.masked_columns == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM customers WHERE email LIKE 'a%'",
        "SELECT id FROM customers ORDER BY email",
        "SELECT count(*) AS n FROM customers GROUP BY email",
        "SELECT o.id FROM orders o JOIN customers c ON c.email = CAST(o.id AS TEXT)",
    ],
    ids=["where", "order-by", "group-by", "join"],
)
def test_using_a_masked_column_to_filter_sort_group_or_join_is_a_policy_violation(member, sales, sql):
    with pytest.raises(PolicyViolation) as caught:
        run(member, [sales], sql)
    assert (caught.value.code, caught.value.status) == ("POLICY_VIOLATION", 403)
    assert "email" in caught.value.message


def test_a_member_with_pii_access_may_filter_on_email(pii_member, sales):
    result = run(pii_member, [sales], "SELECT id FROM customers WHERE email LIKE 'a%' LIMIT 3")
    assert result.row_count == 3


# --- row policies -----------------------------------------------------------------------------


def test_a_row_policy_restricts_an_analyst_to_their_region(north_analyst, sales):
    region_policy(sales)
    result = run(north_analyst, [sales], "SELECT DISTINCT region_id FROM customers")
    assert result.rows == [{"region_id": 1}]


def test_a_row_policy_holds_against_an_or_1_equals_1_bypass(north_analyst, admin_member, sales):
    region_policy(sales)
    north = run(admin_member, [sales], "SELECT count(*) AS n FROM customers WHERE region_id = 1").rows
    bypass = "SELECT count(*) AS n FROM customers WHERE region_id = 2 OR 1=1"
    assert run(north_analyst, [sales], bypass).rows == north
    assert run(admin_member, [sales], bypass).rows != north  # admins are not subject to the analyst policy


def test_a_row_policy_applies_inside_joins_and_subqueries(north_analyst, sales):
    region_policy(sales)
    sql = (
        "SELECT DISTINCT c.region_id FROM orders o JOIN (SELECT * FROM customers WHERE 1=1 OR region_id > 0) c"
        " ON c.id = o.customer_id"
    )
    assert run(north_analyst, [sales], sql).rows == [{"region_id": 1}]


def test_a_hostile_bound_value_is_a_literal_not_sql(member, sales):
    member.attributes = {"segment": "x' OR '1'='1"}
    member.save()
    RowPolicy.objects.create(
        data_source=sales,
        name="segment",
        table_name="customers",
        predicate="segment = {{member.segment}}",
        roles=["analyst"],
    )
    result = run(member, [sales], "SELECT count(*) AS n FROM customers")
    assert result.rows == [{"n": 0}]


def test_a_policy_for_another_role_does_not_apply(member, sales, pii_member):
    RowPolicy.objects.create(
        data_source=sales, name="none", table_name="customers", predicate="1 = 0", roles=["viewer"]
    )
    assert run(member, [sales], "SELECT count(*) AS n FROM customers").rows[0]["n"] > 0


def test_a_policy_naming_the_user_applies_to_them_only(member, pii_member, sales):
    policy = RowPolicy.objects.create(data_source=sales, name="nobody", table_name="customers", predicate="1 = 0")
    policy.users.add(member.user)
    assert run(member, [sales], "SELECT count(*) AS n FROM customers").rows == [{"n": 0}]
    assert run(pii_member, [sales], "SELECT count(*) AS n FROM customers").rows[0]["n"] > 0


def test_several_policies_on_one_table_combine_with_and(north_analyst, sales):
    region_policy(sales)
    RowPolicy.objects.create(
        data_source=sales, name="retail", table_name="customers", predicate="segment = 'Corporate'", roles=["analyst"]
    )
    rows = run(north_analyst, [sales], "SELECT DISTINCT region_id, segment FROM customers").rows
    assert rows == [{"region_id": 1, "segment": "Corporate"}]


# --- access and scope -------------------------------------------------------------------------


def test_an_analyst_not_in_the_sources_access_rules_is_refused(member, sales):
    SourceAccess.objects.create(data_source=sales, role="viewer")
    with pytest.raises(PolicyViolation) as caught:
        run(member, [sales], "SELECT 1 AS one")
    assert caught.value.check == "source_access"


def test_an_access_rule_naming_the_analyst_lets_them_in(member, sales):
    SourceAccess.objects.create(data_source=sales, role="viewer")
    SourceAccess.objects.create(data_source=sales, user=member.user)
    assert run(member, [sales], "SELECT count(*) AS n FROM regions").rows == [{"n": 5}]


def test_an_admin_may_always_query(admin_member, sales):
    SourceAccess.objects.create(data_source=sales, role="viewer")
    assert run(admin_member, [sales], "SELECT count(*) AS n FROM regions").rows == [{"n": 5}]


def test_another_workspaces_data_source_is_not_available(member, outsider, sales_file):
    theirs = discovered(DataSourceFactory(workspace=outsider.workspace, alias="theirs", path=str(sales_file)))
    with pytest.raises(DataSourceUnavailableError):
        run(member, [theirs], "SELECT count(*) AS n FROM regions")


def test_another_workspaces_table_is_unknown(member, outsider, sales, managers_file):
    discovered(DataSourceFactory(workspace=outsider.workspace, alias="theirs", path=str(managers_file)))
    for sql in ("SELECT * FROM theirs.main.managers", "SELECT * FROM managers"):
        with pytest.raises(SqlValidationFailed) as caught:
            run(member, [sales], sql)
        assert caught.value.check == "unknown_table"
        assert "managers" in caught.value.message


def test_a_deleted_source_is_not_available(member, sales):
    sales.deleted_at = sales.created_at
    sales.save()
    with pytest.raises(DataSourceUnavailableError):
        run(member, [sales], "SELECT 1 AS one")


def test_a_schema_outside_the_selection_is_rejected(member, pg):
    with pytest.raises(SqlValidationFailed) as caught:
        run(member, [pg], "SELECT employee FROM hr.salaries", schemas=["public"])
    assert caught.value.check == "external_schema"
    assert "'hr'" in caught.value.message
    assert run(member, [pg], "SELECT count(*) AS n FROM customers", schemas=["public"]).rows == [{"n": 30}]


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workspace_cap", "source_cap", "request_cap", "expected"),
    [(20, 30, 40, 20), (50, 30, 40, 30), (50, 60, 40, 40), (None, None, None, 100)],
    ids=["workspace", "source", "request", "default"],
)
def test_the_smallest_row_cap_wins_and_truncation_is_reported(
    member, sales, settings, workspace_cap, source_cap, request_cap, expected
):
    settings.QUERY_DEFAULT_ROW_CAP = 100
    member.workspace.row_cap = workspace_cap
    member.workspace.save()
    sales.row_cap = source_cap
    sales.save()
    result = run(member, [sales], "SELECT id FROM order_items", row_limit=request_cap)
    assert result.row_count == expected
    assert result.truncated is True
    assert f"Result truncated to {expected} rows" in result.warnings


def test_a_result_under_the_cap_is_not_truncated(member, sales):
    result = run(member, [sales], "SELECT id FROM regions", row_limit=5)
    assert (result.row_count, result.truncated) == (5, False)
    assert not any("truncated" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("workspace_ms", "source_ms", "expected"),
    [(1000, 2000, 1000), (3000, 2000, 2000), (None, None, 30000)],
    ids=["workspace", "source", "default"],
)
def test_the_smallest_statement_timeout_wins(member, sales, workspace_ms, source_ms, expected):
    member.workspace.statement_timeout_ms = workspace_ms
    member.workspace.save()
    sales.statement_timeout_ms = source_ms
    sales.save()
    plan = governed_prepare(
        GovernedRequest(membership=member, sources=[sales], sql="SELECT 1 AS one", purpose="editor")
    )
    assert plan.timeout_ms == expected


# --- read-only --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM orders", "UPDATE orders SET status = 'x'", "SELECT 1 AS one; DELETE FROM orders"],
    ids=["delete", "update", "stacked"],
)
def test_dml_on_sqlite_is_refused_and_nothing_runs(member, sales, sales_file, sql):
    before = sqlite3.connect(sales_file).execute("SELECT count(*), sum(status = 'x') FROM orders").fetchone()
    with pytest.raises(SqlValidationFailed) as caught:
        run(member, [sales], sql)
    assert caught.value.check in {"read_only", "single_statement"}
    assert sqlite3.connect(sales_file).execute("SELECT count(*), sum(status = 'x') FROM orders").fetchone() == before


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone",
        "INSERT INTO regions VALUES (9, 'Nowhere')",
    ],
    ids=["delete", "cte-delete", "insert"],
)
def test_dml_on_postgres_is_refused_with_check_read_only_and_nothing_runs(member, pg, pg_server, sql):
    before = pg_count(pg_server, "SELECT (SELECT count(*) FROM orders) * 100 + (SELECT count(*) FROM regions)")
    with pytest.raises(SqlValidationFailed) as caught:
        run(member, [pg], sql)
    assert caught.value.check == "read_only"
    assert caught.value.is_write_attempt
    assert pg_count(pg_server, "SELECT (SELECT count(*) FROM orders) * 100 + (SELECT count(*) FROM regions)") == before


# --- timeouts and outages ---------------------------------------------------------------------


def _active_backends(server: dict, marker: str) -> list[tuple]:
    with psycopg.connect(dbname=DATABASE, autocommit=True, **server) as conn:
        return conn.execute(
            "SELECT pid, state FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND state = 'active' AND position(%s in query) > 0",
            [marker],
        ).fetchall()


def _wait_until_gone(server: dict, marker: str) -> list[tuple]:
    # An upper bound for the server to finish tearing down, not a timing assertion.
    for _ in range(60):
        running = _active_backends(server, marker)
        if not running:
            return []
        time.sleep(0.05)
    return running


def test_a_slow_postgres_query_times_out_and_leaves_no_backend_running(member, pg, pg_server):
    pg.statement_timeout_ms = 200
    pg.save()
    marker = f"slow-{uuid.uuid4().hex[:12]}"
    sql = f"SELECT count(*) AS n FROM numbers a CROSS JOIN numbers b CROSS JOIN numbers c WHERE a.label <> '{marker}'"
    with pytest.raises(QueryTimeoutError) as caught:
        run(member, [pg], sql)
    assert caught.value.code == "QUERY_TIMEOUT"
    assert _wait_until_gone(pg_server, marker) == []


def test_pg_sleep_is_refused_before_anything_runs(member, pg):
    with pytest.raises(SqlValidationFailed) as caught:
        run(member, [pg], "SELECT pg_sleep(10)")
    assert caught.value.check == "denied_function"


def test_a_stopped_postgres_server_is_data_source_unavailable(member, pg):
    pg.port = 1
    pg.save()
    with pytest.raises(DataSourceUnavailableError) as caught:
        run(member, [pg], "SELECT id FROM customers")
    assert caught.value.code == "DATA_SOURCE_UNAVAILABLE"
    assert "127.0.0.1:1" in caught.value.message


def test_a_missing_sqlite_file_is_data_source_unavailable(member, sales, tmp_path):
    sales.path = str(tmp_path / "gone.sqlite3")
    sales.save()
    with pytest.raises(DataSourceUnavailableError):
        run(member, [sales], "SELECT id FROM regions")


# --- the same rules on PostgreSQL and MariaDB -------------------------------------------------


def test_postgres_masks_and_filters_for_an_analyst(north_analyst, pg):
    region_policy(pg)
    result = run(north_analyst, [pg], "SELECT id, email, region_id FROM customers ORDER BY id")
    assert [row["id"] for row in result.rows] == list(range(3, 31, 3))
    assert {row["region_id"] for row in result.rows} == {1}
    assert all(PARTIAL_EMAIL.match(row["email"]) for row in result.rows)
    assert [(c.name, c.type) for c in result.columns][:2] == [("id", "integer"), ("email", "text")]


def test_postgres_values_are_json_safe(member, pg):
    result = run(member, [pg], "SELECT amount FROM orders WHERE id = 1")
    assert result.rows == [{"amount": 7.5}]


def test_mariadb_masks_and_filters_for_an_analyst(north_analyst, my):
    tier = CatalogColumn.objects.get(table__data_source=my, table__name="loyalty", name="tier")
    tier.pii = True
    tier.save()
    my.refresh_from_db()
    RowPolicy.objects.create(
        data_source=my,
        name="gold",
        table_name="loyalty",
        predicate="points >= {{member.min_points}}",
        roles=["analyst"],
    )
    north_analyst.attributes = {**north_analyst.attributes, "min_points": 250}
    north_analyst.save()
    result = run(north_analyst, [my], "SELECT customer_id, tier FROM loyalty WHERE 1=1 OR 1=1 ORDER BY customer_id")
    assert [row["customer_id"] for row in result.rows] == list(range(25, 31))
    assert {row["tier"] for row in result.rows} == {"***MASKED***"}


def test_dml_on_mariadb_is_refused(member, my):
    with pytest.raises(SqlValidationFailed) as caught:
        run(member, [my], "DELETE FROM loyalty")
    assert caught.value.check == "read_only"


# --- federation -------------------------------------------------------------------------------


def test_a_federated_join_across_postgres_and_mariadb_keeps_policies_and_masking(north_analyst, pg, my):
    region_policy(pg)
    sql = (
        "SELECT c.id, c.email, c.region_id, l.tier FROM pg.public.customers c"
        f" JOIN my.{DATABASE}.loyalty l ON l.customer_id = c.id WHERE 1=1 OR 1=1 ORDER BY c.id"
    )
    result = run(north_analyst, [pg, my], sql)
    assert [row["id"] for row in result.rows] == list(range(3, 31, 3))
    assert {row["region_id"] for row in result.rows} == {1}
    assert all(PARTIAL_EMAIL.match(row["email"]) for row in result.rows)
    assert result.rows[0]["tier"] == "gold"  # customer 3: 3 % 3 == 0
    assert result.masked_columns == ["email"]


def test_a_federated_join_across_postgres_and_sqlite_keeps_policies_and_masking(north_analyst, pg, lite):
    region_policy(pg)
    sql = (
        "SELECT m.manager, count(*) AS customers, max(c.email) AS last_email FROM pg.public.customers c"
        " JOIN lite.main.managers m ON m.region_id = c.region_id GROUP BY m.manager"
    )
    result = run(north_analyst, [pg, lite], sql)
    assert len(result.rows) == 1
    assert (result.rows[0]["manager"], result.rows[0]["customers"]) == ("Nora", 10)
    assert PARTIAL_EMAIL.match(result.rows[0]["last_email"])


def test_a_federated_query_refuses_a_filter_on_a_masked_column(member, pg, lite):
    sql = (
        "SELECT m.manager FROM pg.public.customers c JOIN lite.main.managers m ON m.region_id = c.region_id"
        " WHERE c.email = 'person3@example.com'"
    )
    with pytest.raises(PolicyViolation):
        run(member, [pg, lite], sql)


def test_a_federated_query_must_address_tables_by_alias(member, pg, lite):
    with pytest.raises(SqlValidationFailed) as caught:
        run(member, [pg, lite], "SELECT id FROM customers")
    assert "pg" in caught.value.message


def test_a_federated_query_cannot_read_files(member, pg, lite):
    with pytest.raises(SqlValidationFailed):
        run(member, [pg, lite], "SELECT * FROM read_csv('/etc/passwd')")


# --- streaming --------------------------------------------------------------------------------


def test_governed_stream_yields_masked_rows_lazily(north_analyst, sales):
    region_policy(sales)
    request = GovernedRequest(
        membership=north_analyst, sources=[sales], sql="SELECT id, email, region_id FROM customers", purpose="export"
    )
    with governed_stream(request, max_rows=100_000, batch_size=10) as (columns, rows):
        assert inspect.isgenerator(rows)
        assert [c.name for c in columns if c.masked] == ["email"]
        first = list(islice(rows, 3))
        assert len(first) == 3
        assert all(PARTIAL_EMAIL.match(r["email"]) and r["region_id"] == 1 for r in first)
        rest = sum(1 for _ in rows)
    total = run(north_analyst, [sales], "SELECT count(*) AS n FROM customers").rows[0]["n"]
    assert 3 + rest == total


def test_governed_stream_stops_at_max_rows(member, pg):
    request = GovernedRequest(membership=member, sources=[pg], sql="SELECT n FROM numbers", purpose="export")
    with governed_stream(request, max_rows=25, batch_size=10) as (_, rows):
        assert sum(1 for _ in rows) == 25


def test_governed_stream_checks_policy_before_opening_anything(member, pg):
    request = GovernedRequest(
        membership=member, sources=[pg], sql="SELECT id FROM customers ORDER BY email", purpose="export"
    )
    with pytest.raises(PolicyViolation), governed_stream(request, max_rows=10):
        pass
