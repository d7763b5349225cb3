"""What the governed path keeps between queries in a process — prepared plans, catalogs, source
connections — and proof that none of it outlives a change to what it was made from: row policies,
their users, member attributes, roles, PII/PHI grants, column classification, aliases, and the
source's own connection settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from connectors import engines
from connectors.discovery import discovery_run
from connectors.errors import SqlValidationFailed
from connectors.governed import GovernedRequest, governed_execute, governed_prepare
from connectors.models import CatalogColumn, DataSource, RowPolicy
from connectors.services import data_source_delete, data_source_update
from connectors.sqlgov import cache_clear, cache_stats
from tests.factories import DataSourceFactory, MembershipFactory
from tests.services import require

pytestmark = pytest.mark.django_db

PG_DATABASE = "ps_governed_cache_test"
CUSTOMERS = [(i, f"person{i}@example.com", 1 + i % 3) for i in range(1, 13)]  # (id, email, region_id)
SQL = "SELECT id, email, region_id FROM customers ORDER BY id"


@pytest.fixture(scope="module")
def customers_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("caches") / "customers.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL, region_id INTEGER NOT NULL)")
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?)", CUSTOMERS)
    conn.commit()
    conn.close()
    return path


def discovered(source: DataSource) -> DataSource:
    source = discovery_run(source_id=source.pk)
    assert source.discovery_status == "succeeded", source.discovery_error
    return source


@pytest.fixture
def source(member, customers_file) -> DataSource:
    return discovered(DataSourceFactory(workspace=member.workspace, alias="crm", path=str(customers_file)))


@pytest.fixture(autouse=True)
def _empty_plan_cache():
    cache_clear()


def run(membership, sources, sql=SQL):
    return governed_execute(GovernedRequest(membership=membership, sources=sources, sql=sql, purpose="editor"))


def regions(result) -> set[int]:
    return {row["region_id"] for row in result.rows}


def fresh(membership):
    """The membership as the next request would load it."""
    return type(membership).objects.select_related("workspace", "user").get(pk=membership.pk)


# --- the plan cache -----------------------------------------------------------------------------


def test_a_repeated_query_is_prepared_once(member, source):
    first = governed_prepare(GovernedRequest(membership=member, sources=[source], sql=SQL, purpose="editor"))
    second = governed_prepare(GovernedRequest(membership=member, sources=[source], sql=SQL, purpose="editor"))
    assert cache_stats()["misses"] == 1
    assert cache_stats()["hits"] == 1
    assert second.prepared.sql == first.prepared.sql


def test_a_new_row_policy_applies_to_the_very_next_query(member, source):
    assert regions(run(member, [source])) == {1, 2, 3}
    RowPolicy.objects.create(
        data_source=source, name="north", table_name="customers", predicate="region_id = 1", roles=["analyst"]
    )
    assert regions(run(member, [source])) == {1}


def test_an_edited_policy_predicate_applies_at_once(member, source):
    policy = RowPolicy.objects.create(
        data_source=source, name="one region", table_name="customers", predicate="region_id = 1", roles=["analyst"]
    )
    assert regions(run(member, [source])) == {1}
    policy.predicate = "region_id = 2"
    policy.save()
    assert regions(run(member, [source])) == {2}


def test_a_deactivated_policy_stops_applying_at_once(member, source):
    policy = RowPolicy.objects.create(
        data_source=source, name="north", table_name="customers", predicate="region_id = 1", roles=["analyst"]
    )
    assert regions(run(member, [source])) == {1}
    policy.is_active = False
    policy.save()
    assert regions(run(member, [source])) == {1, 2, 3}


def test_a_policy_given_to_the_user_by_name_applies_at_once(member, source):
    policy = RowPolicy.objects.create(
        data_source=source, name="north for some", table_name="customers", predicate="region_id = 1", roles=[]
    )
    assert regions(run(member, [source])) == {1, 2, 3}
    policy.users.add(member.user)
    assert regions(run(member, [source])) == {1}


def test_a_changed_member_attribute_rebinds_the_policy_at_once(member, source):
    RowPolicy.objects.create(
        data_source=source,
        name="own region",
        table_name="customers",
        predicate="region_id = {{member.region_id}}",
        roles=["analyst"],
    )
    member.attributes = {"region_id": 1}
    member.save()
    assert regions(run(fresh(member), [source])) == {1}
    member.attributes = {"region_id": 3}
    member.save()
    assert regions(run(fresh(member), [source])) == {3}


def test_two_members_with_different_attributes_get_their_own_rows(member, source):
    RowPolicy.objects.create(
        data_source=source,
        name="own region",
        table_name="customers",
        predicate="region_id = {{member.region_id}}",
        roles=["analyst"],
    )
    other = MembershipFactory(workspace=member.workspace, role="analyst", attributes={"region_id": 2})
    member.attributes = {"region_id": 1}
    member.save()
    assert regions(run(fresh(member), [source])) == {1}
    assert regions(run(fresh(other), [source])) == {2}


def test_a_role_change_changes_which_policies_apply_at_once(member, source):
    RowPolicy.objects.create(
        data_source=source, name="north", table_name="customers", predicate="region_id = 1", roles=["viewer"]
    )
    assert regions(run(member, [source])) == {1, 2, 3}
    member.role = "viewer"
    member.save()
    assert regions(run(fresh(member), [source])) == {1}


def test_a_granted_and_revoked_pii_access_takes_effect_at_once(member, source):
    assert run(member, [source]).masked_columns == ["email"]
    member.pii_access = True
    member.save()
    unmasked = run(fresh(member), [source])
    assert unmasked.masked_columns == []
    assert unmasked.rows[0]["email"] == "person1@example.com"
    member.pii_access = False
    member.save()
    assert run(fresh(member), [source]).masked_columns == ["email"]


def test_a_column_classified_pii_is_masked_at_once(member, source):
    assert run(member, [source], "SELECT region_id FROM customers").masked_columns == []
    column = CatalogColumn.objects.get(table__data_source=source, name="region_id")
    column.pii = True
    column.save()
    source.refresh_from_db()
    assert run(member, [source], "SELECT region_id FROM customers").masked_columns == ["region_id"]


def test_a_cached_plan_is_not_changed_by_what_one_caller_does_with_it(member, source):
    first = governed_prepare(GovernedRequest(membership=member, sources=[source], sql=SQL, purpose="editor"))
    first.prepared.warnings.append("only mine")
    first.prepared.output_columns[1].masked = False
    second = governed_prepare(GovernedRequest(membership=member, sources=[source], sql=SQL, purpose="editor"))
    assert cache_stats()["hits"] == 1
    assert "only mine" not in second.prepared.warnings
    assert second.prepared.masked_columns == ["email"]


def test_access_is_checked_on_every_query_even_when_the_plan_is_cached(member, source):
    run(member, [source])
    source.is_active = False
    source.save()
    with pytest.raises(Exception, match="inactive"):
        run(member, [source])


def test_a_renamed_alias_addresses_the_source_at_once(member, source, customers_file):
    other = discovered(DataSourceFactory(workspace=member.workspace, alias="crm_copy", path=str(customers_file)))
    sql = "SELECT count(*) AS n FROM crm.customers"
    assert run(member, [source, other], sql).rows == [{"n": len(CUSTOMERS)}]
    admin = MembershipFactory(workspace=member.workspace, role="admin")
    renamed = data_source_update(membership=admin, source=source, alias="people")
    assert run(member, [renamed, other], "SELECT count(*) AS n FROM people.customers").rows == [{"n": len(CUSTOMERS)}]
    with pytest.raises(SqlValidationFailed, match="no source 'crm'"):
        run(member, [renamed, other], sql)


# --- pooled source connections ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_fields() -> dict:
    url = urlparse(require("postgres"))
    server = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432, "user": url.username or "postgres"}
    with psycopg.connect(dbname=url.path.lstrip("/") or "postgres", autocommit=True, **server) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    with psycopg.connect(dbname=PG_DATABASE, autocommit=True, **server) as conn:
        conn.execute("DROP TABLE IF EXISTS customers")
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, region_id int NOT NULL)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO customers VALUES (%s, %s, %s)", CUSTOMERS)
    return {
        "connector_type": "postgres",
        "host": server["host"],
        "port": server["port"],
        "username": server["user"],
        "database": PG_DATABASE,
    }


@pytest.fixture
def pg(member, pg_fields) -> DataSource:
    source = discovered(DataSourceFactory(workspace=member.workspace, alias="pg", **pg_fields))
    yield source
    engines.close_pooled(str(source.uuid))


def backend_pid(member, source) -> int:
    seen: list[dict] = []
    governed_execute(
        GovernedRequest(membership=member, sources=[source], sql="SELECT id FROM customers", purpose="editor"),
        on_connected=seen.append,
    )
    return seen[-1]["backend_pid"]


def test_queries_on_a_postgres_source_reuse_its_connection(member, pg):
    first = backend_pid(member, pg)
    assert backend_pid(member, pg) == first
    assert engines.idle_pooled(str(pg.uuid)) == 1


def test_editing_a_source_closes_its_idle_connections(member, admin_member, pg):
    first = backend_pid(member, pg)
    edited = data_source_update(membership=admin_member, source=pg, description="edited")
    assert engines.idle_pooled(str(pg.uuid)) == 0
    assert backend_pid(member, edited) != first


def test_deleting_a_source_closes_its_idle_connections(member, admin_member, pg):
    backend_pid(member, pg)
    assert engines.idle_pooled(str(pg.uuid)) == 1
    data_source_delete(membership=admin_member, source=pg)
    assert engines.idle_pooled(str(pg.uuid)) == 0


def test_new_credentials_edited_elsewhere_get_a_new_connection(member, pg):
    first = backend_pid(member, pg)
    # Another process saved the source: this process got no signal, only the changed row.
    DataSource.objects.filter(pk=pg.pk).update(options={"application_name": "edited-elsewhere"})
    pg.refresh_from_db()
    assert backend_pid(member, pg) != first
    assert engines.idle_pooled(str(pg.uuid)) == 1


def test_a_failed_governed_query_does_not_return_its_connection(member, pg):
    first = backend_pid(member, pg)
    with pytest.raises(Exception, match="division by zero"):
        run(member, [pg], "SELECT id / (id - id) AS x FROM customers")
    assert engines.idle_pooled(str(pg.uuid)) == 0
    assert backend_pid(member, pg) != first
