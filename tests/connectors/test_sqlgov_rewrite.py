"""Step 2: row policies as filtered subqueries with bound placeholders, and the row cap."""

from __future__ import annotations

import sqlite3

import pytest
import sqlglot
from sqlglot import exp

from connectors.sqlgov import prepare_query
from connectors.sqlgov.rewrite import bind_predicate
from connectors.types import Grants, RowPolicySpec
from tests.connectors.test_sqlgov_fixtures import crm_catalog, prepare, region_policy

SQLITE = crm_catalog(engine="sqlite", schema="main")


@pytest.fixture
def db():
    connection = sqlite3.connect(":memory:")
    connection.executescript(
        """
        CREATE TABLE users (id INTEGER, email TEXT, phone TEXT, name TEXT, region TEXT, owner_email TEXT);
        INSERT INTO users VALUES
            (1, 'ann@example.com', '555-0101', 'Ann', 'north', 'rep@example.com'),
            (2, 'bob@example.com', '555-0102', 'Bob', 'south', 'rep@example.com'),
            (3, 'cy@example.com', '555-0103', 'Cy', 'south', 'boss@example.com');
        CREATE TABLE orders (id INTEGER, user_id INTEGER, amount NUMERIC, product_id TEXT);
        INSERT INTO orders VALUES (10, 1, 100, 'p'), (11, 2, 50, 'p'), (12, 3, 25, 'p');
        """
    )
    yield connection
    connection.close()


def run_sqlite(db, sql: str, *, bindings=None, policies=None, grants=None, row_cap: int = 1000):
    prepared = prepare(
        sql,
        sources=[SQLITE],
        policies=policies if policies is not None else [region_policy(schema="main")],
        bindings={"member.region": "south"} if bindings is None else bindings,
        grants=grants or Grants(pii=True),
        row_cap=row_cap,
    )
    return prepared, db.execute(prepared.sql).fetchall()


def test_it_wraps_a_governed_table_in_a_filtered_subquery_keeping_its_alias():
    prepared = prepare("SELECT u.name FROM users u", policies=[region_policy()], bindings={"member.region": "south"})
    assert prepared.sql == (
        'SELECT "u"."name" AS "name" FROM (SELECT * FROM "public"."users" WHERE (region = \'south\')) AS "u" LIMIT 1001'
    )


def test_it_uses_the_table_name_as_the_alias_when_there_is_none():
    prepared = prepare("SELECT name FROM users", policies=[region_policy()], bindings={"member.region": "south"})
    assert "WHERE (region = 'south')) AS \"users\"" in prepared.sql


def test_it_ands_several_policies_on_one_table():
    policies = [region_policy(), RowPolicySpec("crm", "public", "users", "id <> {{user.id}}", name="not-me")]
    prepared = prepare("SELECT name FROM users", policies=policies, bindings={"member.region": "south", "user.id": 7})
    assert "WHERE (region = 'south') AND (id <> 7)" in prepared.sql


def test_it_leaves_tables_without_policies_alone():
    prepared = prepare("SELECT id FROM orders", policies=[region_policy()], bindings={"member.region": "south"})
    assert "SELECT *" not in prepared.sql


def test_a_users_or_1_equals_1_cannot_bypass_the_row_policy(db):
    _, rows = run_sqlite(db, "SELECT name FROM users WHERE name = 'nobody' OR 1=1 ORDER BY name")
    assert rows == [("Bob",), ("Cy",)]


def test_the_row_policy_holds_in_ctes_subqueries_joins_and_unions(db):
    sql = """
        WITH everyone AS (SELECT id, name FROM users)
        SELECT e.name FROM everyone e
        UNION
        SELECT name FROM (SELECT name FROM users WHERE 1=1) AS s
        UNION
        SELECT u.name FROM orders o JOIN users u ON u.id = o.user_id
        UNION
        SELECT name FROM users WHERE id IN (SELECT id FROM users)
    """
    prepared, rows = run_sqlite(db, sql)
    assert sorted(rows) == [("Bob",), ("Cy",)]
    assert prepared.sql.count("WHERE (region = 'south')") == 5


def test_a_hostile_binding_stays_one_string_literal(db):
    prepared, rows = run_sqlite(db, "SELECT name FROM users", bindings={"member.region": "x' OR '1'='1"})
    assert rows == []
    where = sqlglot.parse_one(prepared.sql, read="sqlite").find(exp.Subquery).this.args["where"]
    literal = where.find(exp.EQ).expression
    assert isinstance(literal, exp.Literal)
    assert literal.is_string
    assert literal.this == "x' OR '1'='1"


def test_a_placeholder_without_a_binding_denies_every_row(db):
    prepared, rows = run_sqlite(db, "SELECT name FROM users", bindings={})
    assert rows == []
    assert "WHERE (FALSE)" in prepared.sql or "WHERE (0)" in prepared.sql


def test_a_policy_that_cannot_be_parsed_denies_every_row_with_a_warning(db):
    broken = RowPolicySpec("crm", "main", "users", "region = = {{member.region}}", name="broken")
    prepared, rows = run_sqlite(db, "SELECT name FROM users", policies=[broken])
    assert rows == []
    assert any("broken" in w for w in prepared.warnings)


def test_placeholders_allow_whitespace_inside_the_braces():
    bound = bind_predicate("owner_email = {{   user.email}}", dialect="postgres", bindings={"user.email": "a@b.c"})
    assert bound.sql("postgres") == "owner_email = 'a@b.c'"


def test_a_numeric_binding_becomes_a_number_literal():
    bound = bind_predicate("id = {{user.id}}", dialect="postgres", bindings={"user.id": 42})
    assert bound.sql("postgres") == "id = 42"


def test_a_negative_number_cannot_start_a_comment():
    bound = bind_predicate("id-{{user.id}} > 0", dialect="postgres", bindings={"user.id": -1})
    assert "--" not in bound.sql("postgres")


def test_a_list_binding_expands_inside_in():
    bound = bind_predicate(
        "region IN ({{member.regions}})", dialect="postgres", bindings={"member.regions": ["north", "it's"]}
    )
    assert bound.sql("postgres") == "region IN ('north', 'it''s')"


def test_a_list_binding_outside_in_denies():
    assert bind_predicate("region = {{member.regions}}", dialect="postgres", bindings={"member.regions": ["a"]}) is None


def test_a_placeholder_inside_a_string_literal_is_bound_inside_that_literal():
    bound = bind_predicate(
        "owner_email LIKE '%{{user.email}}'", dialect="postgres", bindings={"user.email": "o'hara@x.io"}
    )
    assert bound.sql("postgres") == "owner_email LIKE '%o''hara@x.io'"


def test_a_policy_using_a_denied_function_denies():
    assert bind_predicate("pg_sleep(10) IS NULL", dialect="postgres", bindings={}) is None


def test_member_attribute_placeholders_bind_from_their_key(db):
    policy = RowPolicySpec("crm", "main", "users", "owner_email = {{ user.email }}", name="owner")
    _, rows = run_sqlite(
        db, "SELECT name FROM users ORDER BY name", policies=[policy], bindings={"user.email": "rep@example.com"}
    )
    assert rows == [("Ann",), ("Bob",)]


def test_it_adds_a_limit_of_row_cap_plus_one_when_there_is_none():
    prepared = prepare("SELECT id FROM users", row_cap=50)
    assert prepared.sql.endswith("LIMIT 51")
    assert prepared.row_cap == 50
    assert prepared.warnings == []


def test_it_lowers_a_limit_above_the_row_cap_with_a_warning():
    prepared = prepare("SELECT id FROM users LIMIT 5000", row_cap=50)
    assert prepared.sql.endswith("LIMIT 51")
    assert prepared.warnings == ["LIMIT 5000 exceeds the row cap of 50; at most 50 rows are returned."]


def test_it_keeps_a_smaller_limit_and_its_offset():
    prepared = prepare("SELECT id FROM users ORDER BY id LIMIT 10 OFFSET 20", row_cap=50)
    assert prepared.sql.endswith("LIMIT 10 OFFSET 20")
    assert prepared.warnings == []


def test_it_caps_a_fetch_first_clause():
    prepared = prepare("SELECT id FROM users FETCH FIRST 500 ROWS ONLY", row_cap=50)
    assert prepared.sql.endswith("LIMIT 51")


def test_it_caps_a_mysql_offset_limit():
    mysql = crm_catalog(engine="mysql", schema="shop")
    prepared = prepare("SELECT id FROM users LIMIT 5, 500", sources=[mysql], row_cap=50)
    assert prepared.sql.endswith("LIMIT 51 OFFSET 5")


def test_it_caps_the_outermost_query_of_a_union_and_not_its_branches(db):
    prepared, rows = run_sqlite(db, "SELECT id FROM users UNION ALL SELECT id FROM orders", policies=[], row_cap=2)
    assert prepared.sql.endswith("LIMIT 3")
    assert len(rows) == 3


def test_it_leaves_a_limit_inside_a_subquery_alone():
    prepared = prepare("SELECT id FROM (SELECT id FROM users LIMIT 5000) s", row_cap=50)
    assert "LIMIT 5000) AS" in prepared.sql
    assert prepared.sql.endswith("LIMIT 51")


def test_truncation_is_detectable_from_the_extra_row(db):
    _, rows = run_sqlite(db, "SELECT id FROM users", policies=[], row_cap=2)
    assert len(rows) == 3


def test_it_rejects_a_non_positive_row_cap():
    with pytest.raises(ValueError, match="row_cap"):
        prepare_query(
            "SELECT 1", sources=[SQLITE], allowed_schemas=None, policies=[], bindings={}, row_cap=0, grants=Grants()
        )
