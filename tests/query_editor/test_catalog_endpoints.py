"""GET /connectors and GET /autocomplete."""

from __future__ import annotations

import pytest
from django.utils import timezone

from connectors.discovery import discovery_run
from connectors.models import SourceAccess
from tests.conftest import client_for
from tests.factories import DataSourceFactory
from tests.query_editor.conftest import space_url
from tests.query_editor.test_execute import assert_error

pytestmark = pytest.mark.django_db


def test_connectors_lists_the_spaces_queryable_sources(analyst_client, slug, sales):
    response = analyst_client.get(space_url(slug, "connectors"))
    assert response.status_code == 200, response.content
    assert response.json() == [
        {"id": str(sales.uuid), "name": "Sales", "connector_type": "query_sqlite", "source_system_name": "demo-sales"}
    ]


def test_connectors_leaves_out_inactive_deleted_closed_and_foreign_sources(
    analyst_client, member, slug, sales, outsider
):
    DataSourceFactory(workspace=member.workspace, name="Off", is_active=False)
    DataSourceFactory(workspace=member.workspace, name="Gone", deleted_at=timezone.now())
    closed = DataSourceFactory(workspace=member.workspace, name="Admins only")
    SourceAccess.objects.create(data_source=closed, role="admin")
    DataSourceFactory(workspace=outsider.workspace, name="Theirs")
    names = [c["name"] for c in analyst_client.get(space_url(slug, "connectors/")).json()]
    assert names == ["Sales"]


def test_an_admin_sees_sources_closed_to_other_roles(admin_member, slug, sales):
    SourceAccess.objects.create(data_source=sales, role="viewer")
    names = [c["name"] for c in client_for(admin_member.user).get(space_url(slug, "connectors")).json()]
    assert names == ["Sales"]


def test_connectors_of_a_foreign_space_is_404(slug, sales, outsider):
    assert_error(client_for(outsider.user).get(space_url(slug, "connectors")), 404, "NOT_FOUND")


def test_autocomplete_returns_tables_with_schema_and_columns(analyst_client, slug, sales):
    response = analyst_client.get(space_url(slug, "autocomplete"))
    assert response.status_code == 200, response.content
    tables = {t["name"]: t for t in response.json()["tables"]}
    assert set(tables) == {"regions", "products", "customers", "orders", "order_items"}
    assert tables["orders"]["schema"] == "main"
    assert tables["orders"]["columns"][:2] == ["id", "customer_id"]
    assert tables["orders"]["connector_id"] == str(sales.uuid)


def test_autocomplete_filters_tables_by_prefix(analyst_client, slug, sales):
    tables = analyst_client.get(space_url(slug, "autocomplete"), {"prefix": "ORD"}).json()["tables"]
    assert sorted(t["name"] for t in tables) == ["order_items", "orders"]
    assert all(len(t["columns"]) > 2 for t in tables)


def test_autocomplete_prefix_matches_schema_qualified_names(analyst_client, slug, sales):
    tables = analyst_client.get(space_url(slug, "autocomplete"), {"prefix": "main.reg"}).json()["tables"]
    assert [t["name"] for t in tables] == ["regions"]


def test_autocomplete_prefix_matching_columns_keeps_just_those_columns(analyst_client, slug, sales):
    tables = analyst_client.get(space_url(slug, "autocomplete"), {"prefix": "ema"}).json()["tables"]
    assert tables == [{"name": "customers", "schema": "main", "columns": ["email"], "connector_id": str(sales.uuid)}]


def test_autocomplete_filters_by_connector(analyst_client, member, slug, sales):
    other = DataSourceFactory(workspace=member.workspace, name="Other", alias="other", path=sales.path)
    discovery_run(source_id=other.pk)
    every = analyst_client.get(space_url(slug, "autocomplete")).json()["tables"]
    assert len(every) == 10
    one = analyst_client.get(space_url(slug, "autocomplete"), {"connector_id": str(other.uuid)}).json()["tables"]
    assert len(one) == 5
    assert {t["connector_id"] for t in one} == {str(other.uuid)}


def test_autocomplete_rejects_a_malformed_connector_id(analyst_client, slug, sales):
    body = assert_error(analyst_client.get(space_url(slug, "autocomplete"), {"connector_id": "x"}), 400, "BAD_REQUEST")
    assert "connector_id" in body["detail"]


def test_autocomplete_of_a_connector_outside_the_space_is_400(analyst_client, slug, sales, outsider):
    foreign = DataSourceFactory(workspace=outsider.workspace)
    response = analyst_client.get(space_url(slug, "autocomplete"), {"connector_id": str(foreign.uuid)})
    assert_error(response, 400, "CONNECTOR_NOT_QUERYABLE")


def test_autocomplete_sees_catalog_edits(analyst_client, slug, sales):
    sales.tables.get(name="regions").delete()
    names = {t["name"] for t in analyst_client.get(space_url(slug, "autocomplete")).json()["tables"]}
    assert "regions" not in names
