"""Several sources: addressing by source alias, DuckDB as the execution dialect."""

from __future__ import annotations

import duckdb
import pytest

from connectors.sqlgov import GovernanceError
from connectors.types import Grants, RowPolicySpec
from tests.connectors.test_sqlgov_fixtures import crm_catalog, prepare

CRM = crm_catalog(alias="crm", engine="postgres", schema="public")
SHOP = crm_catalog(alias="shop", engine="mysql", schema="shopdb")
LOCAL = crm_catalog(alias="local", engine="sqlite", schema="main")
ALL = [CRM, SHOP, LOCAL]


def test_it_federates_when_given_several_sources():
    prepared = prepare(
        "SELECT u.name, o.amount FROM crm.public.users u JOIN shop.orders o ON o.user_id = u.id", sources=ALL
    )
    assert prepared.federated
    assert prepared.dialect == "duckdb"
    assert sorted(prepared.tables) == [("crm", "public", "users"), ("shop", "shopdb", "orders")]
    assert '"crm"."public"."users" AS "u"' in prepared.sql
    assert '"shop"."shopdb"."orders" AS "o"' in prepared.sql


def test_it_reads_alias_dot_table_as_the_sources_default_schema():
    prepared = prepare("SELECT id FROM local.products", sources=ALL)
    assert prepared.tables == [("local", "main", "products")]
    assert '"local"."main"."products"' in prepared.sql


def test_it_federates_one_source_on_request():
    prepared = prepare("SELECT id FROM crm.users", sources=[CRM], federated=True)
    assert prepared.dialect == "duckdb"
    assert '"crm"."public"."users"' in prepared.sql


def test_a_one_part_name_explains_federated_addressing():
    with pytest.raises(GovernanceError) as caught:
        prepare("SELECT id FROM users", sources=ALL)
    assert caught.value.check == "unknown_table"
    assert "<source_alias>.<schema>.<table>" in caught.value.message
    assert "crm, local, shop" in caught.value.message


def test_an_unknown_source_alias_is_an_unknown_table():
    with pytest.raises(GovernanceError, match="elsewhere") as caught:
        prepare("SELECT id FROM elsewhere.public.users", sources=ALL)
    assert caught.value.check == "unknown_table"


def test_a_schema_outside_the_selection_is_rejected_per_source():
    with pytest.raises(GovernanceError) as caught:
        prepare("SELECT id FROM crm.audit.events", sources=ALL, allowed_schemas={"crm": {"public"}})
    assert caught.value.check == "external_schema"
    assert prepare("SELECT id FROM local.audit.events", sources=ALL, allowed_schemas={"crm": {"public"}}).tables


def test_federated_sql_is_parsed_as_duckdb():
    with pytest.raises(GovernanceError) as caught:
        prepare("SELECT `id` FROM shop.users", sources=ALL)
    assert caught.value.check == "parse"


def test_masking_follows_columns_across_sources():
    prepared = prepare(
        "SELECT c.email AS contact, COUNT(s.id) AS orders FROM crm.users c JOIN shop.orders s ON s.user_id = c.id "
        "GROUP BY c.id, c.email",
        sources=ALL,
        grants=Grants(pii=True),
    )
    assert [(c.name, c.masked, c.sensitivity) for c in prepared.output_columns] == [
        ("contact", False, "pii"),
        ("orders", False, None),
    ]


def test_each_sources_policy_is_transpiled_from_its_dialect():
    policy = RowPolicySpec("shop", "shopdb", "users", "`region` = {{member.region}}", name="mysql-region")
    prepared = prepare("SELECT name FROM shop.users", sources=ALL, policies=[policy], bindings={"member.region": "eu"})
    assert "`" not in prepared.sql
    assert '(SELECT * FROM "shop"."shopdb"."users" WHERE ("region" = \'eu\')) AS "users"' in prepared.sql


def test_federated_sql_runs_in_duckdb_with_sources_attached_under_their_alias():
    policy = RowPolicySpec("crm", "public", "users", "region = {{member.region}}", name="region")
    prepared = prepare(
        "SELECT u.name, SUM(o.amount) AS total FROM crm.public.users u JOIN local.orders o ON o.user_id = u.id "
        "WHERE u.name <> 'x' OR 1 = 1 GROUP BY u.name ORDER BY u.name",
        sources=ALL,
        policies=[policy],
        bindings={"member.region": "south"},
    )
    connection = duckdb.connect()
    try:
        connection.execute("ATTACH ':memory:' AS crm")
        connection.execute("CREATE SCHEMA crm.public")
        connection.execute("CREATE TABLE crm.public.users (id INT, email TEXT, name TEXT, region TEXT)")
        connection.execute("INSERT INTO crm.public.users VALUES (1, 'a@x', 'Ann', 'north'), (2, 'b@x', 'Bob', 'south')")
        connection.execute("ATTACH ':memory:' AS local")
        connection.execute("CREATE TABLE local.main.orders (id INT, user_id INT, amount INT)")
        connection.execute("INSERT INTO local.main.orders VALUES (1, 1, 10), (2, 2, 20), (3, 2, 5)")
        rows = connection.execute(prepared.sql).fetchall()
    finally:
        connection.close()
    assert rows == [("Bob", 25)]


def test_it_refuses_several_sources_when_federation_is_turned_off():
    with pytest.raises(ValueError, match="federated"):
        prepare("SELECT 1", sources=ALL, federated=False)
