"""Step 1: one read-only statement, allowed functions, known tables, columns and schemas."""

from __future__ import annotations

import pytest

from connectors.sqlgov import GovernanceError
from tests.connectors.test_sqlgov_fixtures import CRM, crm_catalog, prepare


def rejected(sql: str, **kwargs) -> GovernanceError:
    with pytest.raises(GovernanceError) as caught:
        prepare(sql, **kwargs)
    return caught.value


def assert_rejected(sql: str, check: str, *, mentions: str = "", **kwargs) -> GovernanceError:
    error = rejected(sql, **kwargs)
    assert error.check == check, error.message
    assert error.code == "SQL_VALIDATION_ERROR"
    assert mentions.lower() in error.message.lower()
    return error


def test_it_rejects_oversized_sql_before_parsing():
    assert_rejected("SELECT 1 " + " " * 50_000, "too_long", mentions="50,000")


def test_it_rejects_empty_sql():
    assert_rejected("   ", "empty")


def test_it_rejects_sql_that_is_only_a_comment():
    assert_rejected("-- nothing here", "empty")


def test_it_rejects_unparseable_sql():
    assert_rejected("SELEC id FROM users", "parse")


def test_it_rejects_another_dialects_syntax():
    # MySQL backtick quoting is not PostgreSQL
    assert_rejected("SELECT `id` FROM users", "parse")


def test_it_rejects_tsql_top_in_postgres():
    assert_rejected("SELECT TOP 5 id FROM users", "parse")


def test_it_parses_in_the_sources_dialect():
    mysql = crm_catalog(engine="mysql", schema="shop")
    prepared = prepare("SELECT `id` FROM users", sources=[mysql])
    assert prepared.dialect == "mysql"
    assert prepared.sql == "SELECT `users`.`id` AS `id` FROM `shop`.`users` AS `users` LIMIT 1001"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE users",
        "SELECT id FROM users /* harmless */; DELETE FROM users",
        "SELECT id FROM users -- the rest is a comment\n; DROP TABLE users",
        "COMMIT; DROP TABLE users",
        "SELECT 1; SELECT 2",
    ],
)
def test_it_rejects_more_than_one_statement(sql):
    assert_rejected(sql, "single_statement")


def test_it_accepts_a_trailing_semicolon():
    assert prepare("SELECT id FROM users;").tables == [("crm", "public", "users")]


@pytest.mark.parametrize(
    ("sql", "mentions"),
    [
        ("DELETE FROM users", "delete"),
        ("UPDATE users SET name = 'x'", "update"),
        ("INSERT INTO users (id) VALUES (1)", "insert"),
        ("DROP TABLE users", "drop"),
        ("TRUNCATE users", "truncate"),
        ("CREATE TABLE x (id int)", "create"),
        ("ALTER TABLE users ADD COLUMN x int", "alter"),
        ("COPY users TO '/tmp/users.csv'", "copy"),
        ("SET statement_timeout = 0", "set"),
        ("CALL refresh_everything()", "call"),
        ("EXPLAIN ANALYZE SELECT 1", "explain"),
        ("VALUES (1)", "values"),
        ("WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x", "delete"),
        ("SELECT * INTO stolen FROM users", "into"),
        ("SELECT id FROM users FOR UPDATE", "for update"),
        ("SELECT id FROM users FOR SHARE", "for share"),
    ],
)
def test_it_rejects_statements_that_are_not_read_only(sql, mentions):
    assert_rejected(sql, "read_only", mentions=mentions)


def test_it_rejects_dml_inside_cte():
    assert_rejected("WITH gone AS (DELETE FROM users RETURNING id) SELECT id FROM gone", "read_only")


@pytest.mark.parametrize(
    "sql", ["ATTACH 'other.db' AS other", "DETACH other", "PRAGMA database_list", "INSTALL httpfs"]
)
def test_it_rejects_duckdb_session_statements(sql):
    duck = crm_catalog(engine="duckdb", schema="main")
    assert_rejected(sql, "read_only", sources=[duck])


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT pg_sleep(10)", "pg_sleep"),
        ("SELECT id FROM users WHERE pg_sleep(1) IS NULL", "pg_sleep"),
        ("SELECT PG_READ_FILE('/etc/passwd')", "pg_read_file"),
        ("SELECT pg_catalog.pg_read_binary_file('/etc/passwd')", "pg_read_binary_file"),
        ("SELECT lo_import('/etc/passwd')", "lo_import"),
        ("SELECT * FROM dblink('host=evil', 'select 1') AS t(x int)", "dblink"),
        ("SELECT set_config('statement_timeout', '0', false)", "set_config"),
        ("SELECT current_setting('data_directory')", "current_setting"),
        ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
        ("SELECT id FROM users WHERE id = (SELECT 1 FROM (SELECT pg_sleep(5)) s)", "pg_sleep"),
    ],
)
def test_it_rejects_denied_postgres_functions(sql, function):
    assert_rejected(sql, "denied_function", mentions=function)


def test_it_rejects_load_extension_in_sqlite():
    sqlite = crm_catalog(engine="sqlite", schema="main")
    assert_rejected(
        "SELECT load_extension('/tmp/evil.so')", "denied_function", mentions="load_extension", sources=[sqlite]
    )


@pytest.mark.parametrize(
    "sql", ["SELECT sleep(5)", "SELECT benchmark(1000000, md5('x'))", "SELECT load_file('/etc/passwd')"]
)
def test_it_rejects_denied_mysql_functions(sql):
    mysql = crm_catalog(engine="mysql", schema="shop")
    assert_rejected(sql, "denied_function", sources=[mysql])


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
        ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "read_parquet"),
        ("SELECT * FROM read_json_auto('/tmp/x.json')", "read_json_auto"),
        ("SELECT content FROM read_text('/etc/passwd')", "read_text"),
        ("SELECT * FROM glob('/etc/*')", "glob"),
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM sqlite_scan('/tmp/x.db', 't')", "sqlite_scan"),
        ("SELECT * FROM postgres_scan('host=x', 'public', 't')", "postgres_scan"),
        ("SELECT getenv('HOME')", "getenv"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ],
)
def test_it_rejects_duckdb_file_and_database_functions(sql, function):
    duck = crm_catalog(engine="duckdb", schema="main")
    assert_rejected(sql, "denied_function", mentions=function, sources=[duck])


def test_it_rejects_a_table_valued_function_outside_the_allowlist():
    sqlite = crm_catalog(engine="sqlite", schema="main")
    assert_rejected("SELECT * FROM json_each('[1,2]')", "denied_function", mentions="json_each", sources=[sqlite])


def test_it_allows_generate_series_and_unnest_in_from():
    assert prepare("SELECT g FROM generate_series(1, 3) AS g").output_columns[0].name == "g"
    assert prepare("SELECT x FROM unnest(ARRAY[1, 2]) AS u(x)").tables == []


def test_it_rejects_an_unknown_table():
    assert_rejected("SELECT * FROM secrets", "unknown_table", mentions="secrets")


def test_it_rejects_a_system_catalog_table():
    assert_rejected("SELECT * FROM pg_catalog.pg_shadow", "unknown_table", mentions="pg_shadow")


def test_it_rejects_another_sources_alias_in_a_three_part_name():
    assert_rejected("SELECT id FROM otherws.public.users", "unknown_table", mentions="otherws.public.users")


def test_it_rejects_a_duckdb_file_path_used_as_a_table():
    duck = crm_catalog(engine="duckdb", schema="main")
    assert_rejected("SELECT * FROM '/etc/passwd'", "unknown_table", mentions="/etc/passwd", sources=[duck])


def test_it_rejects_a_table_in_a_schema_outside_the_selection():
    error = assert_rejected(
        "SELECT id FROM audit.events", "external_schema", mentions="audit", allowed_schemas={"crm": {"public"}}
    )
    assert "crm" in error.message


def test_it_allows_every_schema_when_the_selection_is_empty():
    assert prepare("SELECT id FROM audit.events", allowed_schemas={"crm": set()}).tables == [("crm", "audit", "events")]


def test_it_treats_a_cte_name_as_a_table_only_inside_its_with():
    assert_rejected(
        "SELECT * FROM (WITH hidden AS (SELECT id FROM users) SELECT id FROM hidden) s JOIN hidden h ON h.id = s.id",
        "unknown_table",
        mentions="hidden",
    )


def test_it_rejects_an_unknown_column():
    assert_rejected("SELECT password FROM users", "unknown_column", mentions="password")


def test_it_rejects_an_unknown_column_on_an_alias():
    assert_rejected("SELECT u.password FROM users u", "unknown_column", mentions="password")


def test_it_rejects_an_unknown_column_in_where():
    assert_rejected("SELECT id FROM users WHERE is_admin", "unknown_column", mentions="is_admin")


def test_it_rejects_an_ambiguous_column():
    assert_rejected("SELECT id FROM users, orders", "unknown_column", mentions="id")


def test_it_accepts_table_schema_and_alias_addressing_for_one_source():
    for sql in ("SELECT id FROM users", "SELECT id FROM public.users", "SELECT id FROM crm.public.users"):
        prepared = prepare(sql)
        assert prepared.sql == 'SELECT "users"."id" AS "id" FROM "public"."users" AS "users" LIMIT 1001'
        assert prepared.tables == [("crm", "public", "users")]
        assert not prepared.federated


def test_it_expands_star_from_the_catalog():
    prepared = prepare("SELECT * FROM users")
    assert [c.name for c in prepared.output_columns] == ["id", "email", "phone", "name", "region", "owner_email"]


def test_it_expands_a_qualified_star_per_table():
    prepared = prepare("SELECT o.*, u.name FROM orders o JOIN users u ON u.id = o.user_id")
    assert [c.name for c in prepared.output_columns] == ["id", "user_id", "amount", "product_id", "name"]


def test_it_accepts_joins_ctes_unions_and_aliases():
    prepared = prepare(
        """
        WITH big AS (SELECT user_id, SUM(amount) AS total FROM orders GROUP BY user_id HAVING SUM(amount) > 100)
        SELECT u.name AS customer, b.total FROM users AS u JOIN big b ON b.user_id = u.id
        UNION ALL
        SELECT p.title, 0 FROM products p
        """
    )
    assert [c.name for c in prepared.output_columns] == ["customer", "total"]
    assert sorted(prepared.tables) == [
        ("crm", "public", "orders"),
        ("crm", "public", "products"),
        ("crm", "public", "users"),
    ]


def test_it_reports_the_tables_it_references_once():
    prepared = prepare("SELECT a.id FROM users a JOIN users b ON a.id = b.id")
    assert prepared.tables == [("crm", "public", "users")]


def test_the_shared_catalog_is_not_changed_by_a_query():
    before = [t.name for t in CRM.tables]
    prepare("SELECT * FROM users")
    assert [t.name for t in CRM.tables] == before


def test_it_rejects_duckdb_columns_expressions_whose_names_are_unknown_until_run_time():
    duck = crm_catalog(engine="duckdb", schema="main")
    assert_rejected("SELECT COLUMNS('e.*') FROM users", "denied_function", mentions="columns", sources=[duck])


def test_it_keeps_an_unexpandable_star_over_a_generated_series():
    duck = crm_catalog(engine="duckdb", schema="main")
    assert prepare("SELECT * FROM range(3)", sources=[duck]).tables == []


def test_it_drops_comments_so_mysql_executable_comments_never_reach_the_server():
    mysql = crm_catalog(engine="mysql", schema="shop")
    prepared = prepare("SELECT id /*!50000 , SLEEP(10) */ FROM users -- trailing", sources=[mysql])
    assert "/*" not in prepared.sql
    assert "SLEEP" not in prepared.sql.upper()
