"""GET /history (own, filtered, paginated) and GET /history/admin (every member, admins only)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import client_for
from tests.query_editor.conftest import space_url
from tests.query_editor.test_execute import assert_error, execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def ran(analyst_client, pii_member, slug, sales):
    """The analyst ran two good queries and one bad; another member ran one."""
    execute(analyst_client, slug, "SELECT id FROM regions", sales.uuid)
    execute(analyst_client, slug, "SELECT name FROM regions", sales.uuid)
    execute(analyst_client, slug, "DELETE FROM regions", sales.uuid)
    execute(client_for(pii_member.user), slug, "SELECT id FROM products", sales.uuid)


def test_history_lists_the_callers_executions_newest_first(analyst_client, slug, sales, ran):
    response = analyst_client.get(space_url(slug, "history"))
    assert response.status_code == 200
    items = response.json()
    assert [i["sql_text"] for i in items] == [
        "DELETE FROM regions",
        "SELECT name FROM regions",
        "SELECT id FROM regions",
    ]
    assert response["X-Pagination-Total"] == "3"
    failed, ok = items[0], items[2]
    assert set(ok) == {
        "id",
        "connector_id",
        "sql_text",
        "row_count",
        "execution_ms",
        "status",
        "error_message",
        "executed_at",
    }
    assert (ok["status"], ok["row_count"], ok["error_message"], ok["connector_id"]) == (
        "success",
        5,
        None,
        str(sales.uuid),
    )
    assert uuid.UUID(ok["id"])
    assert ok["executed_at"].endswith("Z")
    assert failed["status"] == "error"
    assert failed["error_message"]


def test_history_filters_by_status(analyst_client, slug, ran):
    items = analyst_client.get(space_url(slug, "history"), {"status": "error"}).json()
    assert [i["sql_text"] for i in items] == ["DELETE FROM regions"]
    assert_error(analyst_client.get(space_url(slug, "history"), {"status": "meh"}), 400, "BAD_REQUEST")


def test_history_filters_by_connector(analyst_client, slug, sales, ran):
    assert len(analyst_client.get(space_url(slug, "history"), {"connector_id": str(sales.uuid)}).json()) == 3
    assert analyst_client.get(space_url(slug, "history"), {"connector_id": str(uuid.uuid4())}).json() == []
    assert_error(analyst_client.get(space_url(slug, "history"), {"connector_id": "x"}), 400, "BAD_REQUEST")


def test_history_paginates(analyst_client, slug, ran):
    response = analyst_client.get(space_url(slug, "history/"), {"page_size": 2, "page": 2})
    assert len(response.json()) == 1
    assert (response["X-Pagination-Page"], response["X-Pagination-Total-Pages"]) == ("2", "2")


def test_admin_history_lists_every_member_with_their_email(admin_member, member, pii_member, slug, ran):
    response = client_for(admin_member.user).get(space_url(slug, "history/admin"))
    assert response.status_code == 200, response.content
    items = response.json()
    assert response["X-Pagination-Total"] == "4"
    assert {i["user_email"] for i in items} == {member.user.email, pii_member.user.email}


def test_admin_history_filters_too(admin_member, slug, ran):
    items = client_for(admin_member.user).get(space_url(slug, "history/admin/"), {"status": "error"}).json()
    assert len(items) == 1


def test_admin_history_is_403_for_non_admins(analyst_client, slug, ran):
    assert_error(analyst_client.get(space_url(slug, "history/admin")), 403, "FORBIDDEN")


def test_history_of_a_foreign_space_is_404(slug, outsider, ran):
    assert_error(client_for(outsider.user).get(space_url(slug, "history")), 404, "NOT_FOUND")
    assert_error(client_for(outsider.user).get(space_url(slug, "history/admin")), 404, "NOT_FOUND")
