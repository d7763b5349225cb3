"""POST /api/v1/spaces/{slug}/sql: the DDN-style SQL endpoint programs (and scripts) call."""

from __future__ import annotations

import sqlite3

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create
from connectors.models import DataSource
from tests.conftest import client_for
from tests.factories import MembershipFactory
from tests.programs.conftest import make_sales_source

pytestmark = pytest.mark.django_db


def _url(slug: str) -> str:
    return f"/api/v1/spaces/{slug}/sql"


def _key_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_it_answers_a_json_array_of_row_objects(member, api_key_token, sales_source):
    response = _key_client(api_key_token).post(
        _url(member.workspace.slug), {"sql": "SELECT id, name FROM regions ORDER BY id LIMIT 3"}, format="json"
    )

    assert response.status_code == 200, response.content
    with sqlite3.connect(sales_source.path) as conn:
        expected = [{"id": i, "name": n} for i, n in conn.execute("SELECT id, name FROM regions ORDER BY id LIMIT 3")]
    assert response.json() == expected


def test_it_accepts_a_jwt_as_well_as_an_api_key(member, sales_source):
    response = client_for(member.user).post(
        _url(member.workspace.slug), {"sql": "SELECT COUNT(*) AS n FROM orders"}, format="json"
    )

    assert response.json() == [{"n": 300}]


def test_it_masks_pii_columns_for_a_member_without_the_grant(member, api_key_token, sales_source):
    response = _key_client(api_key_token).post(
        _url(member.workspace.slug), {"sql": "SELECT email FROM customers ORDER BY id LIMIT 1"}, format="json"
    )

    (row,) = response.json()
    with sqlite3.connect(sales_source.path) as conn:
        (email,) = conn.execute("SELECT email FROM customers ORDER BY id LIMIT 1").fetchone()
    assert row["email"] != email


def test_it_federates_several_sources_by_alias(member, api_key_token, data_root):
    make_sales_source(member.workspace, data_root, name="East", alias="east", orders=50)
    make_sales_source(member.workspace, data_root, name="West", alias="west", orders=70)
    sql = "SELECT COUNT(*) AS n FROM east.main.orders UNION ALL SELECT COUNT(*) FROM west.main.orders"

    response = _key_client(api_key_token).post(_url(member.workspace.slug), {"sql": sql}, format="json")

    assert sorted(row["n"] for row in response.json()) == [50, 70]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "UPDATE orders SET status = 'x'",
        "DROP TABLE orders",
        "INSERT INTO regions VALUES (9, 'x')",
    ],
)
def test_it_refuses_sql_that_writes_with_403(member, api_key_token, sales_source, sql):
    response = _key_client(api_key_token).post(_url(member.workspace.slug), {"sql": sql}, format="json")

    assert response.status_code == 403
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "POLICY_VIOLATION"
    with sqlite3.connect(sales_source.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone() == (300,)


def test_it_refuses_an_unknown_table_with_400(member, api_key_token, sales_source):
    response = _key_client(api_key_token).post(
        _url(member.workspace.slug), {"sql": "SELECT * FROM secrets"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "SQL_VALIDATION_ERROR"


def test_it_answers_404_for_a_space_the_caller_is_not_a_member_of(member, outsider, api_key_token, data_root):
    make_sales_source(outsider.workspace, data_root, name="Theirs", alias="theirs")

    response = _key_client(api_key_token).post(
        _url(outsider.workspace.slug), {"sql": "SELECT * FROM customers"}, format="json"
    )

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}


def test_an_api_key_is_confined_to_its_own_space(member, outsider, data_root):
    # The member also belongs to the outsider's workspace, but their key was made for their own.
    MembershipFactory(user=member.user, workspace=outsider.workspace, role="admin")
    make_sales_source(outsider.workspace, data_root, name="Theirs", alias="theirs")
    _, token = api_key_create(workspace=member.workspace, user=member.user, name="own space only")

    response = _key_client(token).post(_url(outsider.workspace.slug), {"sql": "SELECT 1 AS x"}, format="json")

    assert response.status_code == 404


def test_it_requires_authentication(member, sales_source):
    response = APIClient().post(_url(member.workspace.slug), {"sql": "SELECT 1"}, format="json")

    assert response.status_code == 401


def test_it_requires_sql(member, api_key_token, sales_source):
    response = _key_client(api_key_token).post(_url(member.workspace.slug), {}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "sql: This field is required.", "code": "BAD_REQUEST"}


def test_it_skips_inactive_sources(member, api_key_token, sales_source):
    DataSource.objects.filter(pk=sales_source.pk).update(is_active=False)

    response = _key_client(api_key_token).post(_url(member.workspace.slug), {"sql": "SELECT 1 AS x"}, format="json")

    assert response.status_code == 400
    assert "no active data source" in response.json()["detail"]
