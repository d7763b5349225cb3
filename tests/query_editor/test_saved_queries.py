"""Saved queries: create, list (personal + shared, X-Pagination-*), update and delete by the owner only."""

from __future__ import annotations

import uuid

import pytest

from query_editor.models import SavedQuery
from tests.conftest import client_for
from tests.factories import DataSourceFactory
from tests.query_editor.conftest import space_url
from tests.query_editor.test_execute import assert_error

pytestmark = pytest.mark.django_db


def create(client, slug: str, source, **fields):
    body = {"title": "Orders by status", "sql_text": "SELECT status FROM orders", "connector_id": str(source.uuid)}
    return client.post(space_url(slug, "saved"), {**body, **fields}, format="json")


def test_create_returns_201_with_the_query(analyst_client, member, slug, sales):
    response = create(analyst_client, slug, sales)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "Orders by status"
    assert body["connector_id"] == str(sales.uuid)
    assert body["is_shared"] is False
    assert body["is_owner"] is True
    assert uuid.UUID(body["id"])
    assert body["created_at"].endswith("Z")
    assert SavedQuery.objects.get(pk=body["id"]).owner == member.user


def test_create_validates_fields(analyst_client, slug, sales):
    assert_error(create(analyst_client, slug, sales, title=""), 400, "BAD_REQUEST")
    assert_error(create(analyst_client, slug, sales, sql_text="x" * 50_001), 400, "BAD_REQUEST")
    body = assert_error(create(analyst_client, slug, sales, connector_id="nope"), 400, "BAD_REQUEST")
    assert "connector_id" in body["detail"]


def test_create_rejects_another_spaces_connector(analyst_client, slug, sales, outsider):
    foreign = DataSourceFactory(workspace=outsider.workspace)
    body = assert_error(create(analyst_client, slug, foreign), 400, "BAD_REQUEST")
    assert "connector_id" in body["detail"]


def test_list_shows_own_and_shared_queries_not_others_private_ones(analyst_client, pii_member, slug, sales):
    other = client_for(pii_member.user)
    create(analyst_client, slug, sales, title="mine")
    create(other, slug, sales, title="theirs shared", is_shared=True)
    create(other, slug, sales, title="theirs private")
    response = analyst_client.get(space_url(slug, "saved"))
    assert response.status_code == 200
    titles = {q["title"]: q["is_owner"] for q in response.json()}
    assert titles == {"mine": True, "theirs shared": False}
    assert response["X-Pagination-Total"] == "2"


def test_list_paginates_with_headers(analyst_client, slug, sales):
    for i in range(5):
        create(analyst_client, slug, sales, title=f"q{i}")
    response = analyst_client.get(space_url(slug, "saved/"), {"page": 2, "page_size": 2})
    assert len(response.json()) == 2
    assert response["X-Pagination-Total"] == "5"
    assert response["X-Pagination-Page"] == "2"
    assert response["X-Pagination-Page-Size"] == "2"
    assert response["X-Pagination-Total-Pages"] == "3"
    assert_error(analyst_client.get(space_url(slug, "saved"), {"page": 9}), 400, "BAD_REQUEST")


def test_list_is_scoped_to_the_space(analyst_client, slug, sales, outsider):
    create(analyst_client, slug, sales, is_shared=True)
    response = client_for(outsider.user).get(space_url(outsider.workspace.slug, "saved"))
    assert response.json() == []


def test_the_owner_updates_title_sql_and_sharing(analyst_client, slug, sales):
    query_id = create(analyst_client, slug, sales).json()["id"]
    response = analyst_client.put(
        space_url(slug, f"saved/{query_id}"),
        {"title": "Renamed", "sql_text": "SELECT id FROM orders", "is_shared": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["title"], body["sql_text"], body["is_shared"]) == ("Renamed", "SELECT id FROM orders", True)


def test_an_update_needs_at_least_one_field(analyst_client, slug, sales):
    query_id = create(analyst_client, slug, sales).json()["id"]
    assert_error(analyst_client.put(space_url(slug, f"saved/{query_id}"), {}, format="json"), 400, "BAD_REQUEST")


def test_another_member_may_not_update_a_shared_query_403(analyst_client, pii_member, slug, sales):
    query_id = create(analyst_client, slug, sales, is_shared=True).json()["id"]
    other = client_for(pii_member.user)
    response = other.put(space_url(slug, f"saved/{query_id}"), {"title": "Mine now"}, format="json")
    assert_error(response, 403, "FORBIDDEN")
    assert_error(other.delete(space_url(slug, f"saved/{query_id}")), 403, "FORBIDDEN")


def test_another_member_cannot_see_a_private_query_404(analyst_client, pii_member, slug, sales):
    query_id = create(analyst_client, slug, sales).json()["id"]
    other = client_for(pii_member.user)
    assert_error(other.put(space_url(slug, f"saved/{query_id}"), {"title": "x"}, format="json"), 404, "NOT_FOUND")
    assert_error(other.delete(space_url(slug, f"saved/{query_id}")), 404, "NOT_FOUND")


def test_an_admin_is_no_owner_either(analyst_client, admin_member, slug, sales):
    query_id = create(analyst_client, slug, sales).json()["id"]
    assert_error(client_for(admin_member.user).delete(space_url(slug, f"saved/{query_id}")), 404, "NOT_FOUND")


def test_delete_returns_204_and_removes_it(analyst_client, slug, sales):
    query_id = create(analyst_client, slug, sales).json()["id"]
    response = analyst_client.delete(space_url(slug, f"saved/{query_id}"))
    assert response.status_code == 204
    assert response.content == b""
    assert not SavedQuery.objects.filter(pk=query_id).exists()
    assert_error(analyst_client.delete(space_url(slug, f"saved/{query_id}")), 404, "NOT_FOUND")


def test_unknown_and_malformed_ids_are_404(analyst_client, slug, sales):
    assert_error(analyst_client.delete(space_url(slug, f"saved/{uuid.uuid4()}")), 404, "NOT_FOUND")
    assert_error(analyst_client.delete(space_url(slug, "saved/not-a-uuid")), 404, "NOT_FOUND")


def test_saved_queries_of_a_foreign_space_are_404(slug, sales, outsider):
    assert_error(client_for(outsider.user).get(space_url(slug, "saved")), 404, "NOT_FOUND")
