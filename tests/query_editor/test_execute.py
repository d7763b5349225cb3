"""POST /execute: governed, masked, capped, rate limited, recorded; errors as {"detail", "code"}."""

from __future__ import annotations

import pytest

from accounts.services import api_key_create
from connectors.discovery import discovery_run
from connectors.models import CatalogColumn, SourceAccess
from query_editor.models import QueryHistory
from query_editor.throttling import QueryEditorThrottle
from tests.conftest import client_for
from tests.factories import DataSourceFactory, MembershipFactory
from tests.query_editor.conftest import space_url

pytestmark = pytest.mark.django_db


def execute(client, slug: str, sql: str, connector_id, **extra):
    return client.post(
        space_url(slug, "execute"), {"connector_id": str(connector_id), "sql": sql, **extra}, format="json"
    )


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == code
    assert body["detail"]
    return body


def test_it_returns_columns_rows_and_timing(analyst_client, slug, sales):
    response = execute(analyst_client, slug, "SELECT id, name FROM regions ORDER BY id", sales.uuid)
    assert response.status_code == 200, response.content
    body = response.json()
    assert [c["name"] for c in body["columns"]] == ["id", "name"]
    assert all({"name", "type"} <= set(c) for c in body["columns"])
    assert body["row_count"] == len(body["rows"]) >= 1
    assert body["rows"][0]["id"] == 1
    assert isinstance(body["execution_ms"], int)
    assert body["warnings"] == []


def test_it_accepts_the_path_with_a_trailing_slash(analyst_client, slug, sales):
    response = analyst_client.post(
        space_url(slug, "execute/"), {"connector_id": str(sales.uuid), "sql": "SELECT 1 AS one"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["rows"] == [{"one": 1}]


def test_it_caps_rows_at_500_by_default_and_warns(analyst_client, slug, sales):
    body = execute(analyst_client, slug, "SELECT id FROM orders", sales.uuid).json()
    assert body["row_count"] == 500
    assert any("truncated to 500" in w for w in body["warnings"])


def test_row_limit_lowers_the_cap(analyst_client, slug, sales):
    body = execute(analyst_client, slug, "SELECT id FROM orders", sales.uuid, row_limit=7).json()
    assert body["row_count"] == 7


def test_a_policy_row_cap_wins_over_a_larger_row_limit(analyst_client, slug, sales):
    sales.row_cap = 20
    sales.save()
    body = execute(analyst_client, slug, "SELECT id FROM orders", sales.uuid, row_limit=5000).json()
    assert body["row_count"] == 20


def test_pii_is_masked_for_a_member_without_pii_access(analyst_client, slug, sales):
    body = execute(
        analyst_client, slug, "SELECT id, email AS contact, city FROM customers ORDER BY id", sales.uuid
    ).json()
    assert {c["name"]: c["masked"] for c in body["columns"]} == {"id": False, "contact": True, "city": False}
    assert all(row["contact"] == "***MASKED***" for row in body["rows"])
    assert "1 column masked" in body["warnings"]


def test_pii_is_shown_to_a_member_with_pii_access(pii_member, slug, sales):
    body = execute(client_for(pii_member.user), slug, "SELECT id, email FROM customers ORDER BY id", sales.uuid).json()
    assert "@" in body["rows"][0]["email"]
    assert not any(c["masked"] for c in body["columns"])


def test_aggregates_of_pii_are_not_masked(analyst_client, slug, sales):
    body = execute(analyst_client, slug, "SELECT COUNT(email) AS n FROM customers", sales.uuid).json()
    assert body["rows"][0]["n"] > 0


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "UPDATE customers SET email = 'x'",
        "INSERT INTO regions VALUES (9, 'Nowhere')",
        "DROP TABLE orders",
        "CREATE TABLE t (id int)",
    ],
)
def test_dml_and_ddl_are_blocked_with_403(analyst_client, slug, sales, sql):
    assert_error(execute(analyst_client, slug, sql, sales.uuid), 403, "DML_BLOCKED")


def test_an_unknown_column_is_a_400(analyst_client, slug, sales):
    body = assert_error(
        execute(analyst_client, slug, "SELECT nope FROM orders", sales.uuid), 400, "SQL_VALIDATION_ERROR"
    )
    assert "nope" in body["detail"]


def test_a_database_error_is_a_400_with_its_message(analyst_client, slug, sales):
    # Passes validation, fails in SQLite itself.
    body = assert_error(
        execute(analyst_client, slug, "SELECT abs(-9223372036854775807 - 1) AS x FROM regions", sales.uuid),
        400,
        "QUERY_EXECUTION_ERROR",
    )
    assert "overflow" in body["detail"].lower()


def test_an_unknown_connector_is_not_queryable(analyst_client, slug, sales):
    assert_error(
        execute(analyst_client, slug, "SELECT 1", "00000000-0000-0000-0000-000000000000"),
        400,
        "CONNECTOR_NOT_QUERYABLE",
    )


def test_another_spaces_connector_is_not_queryable(analyst_client, slug, sales, outsider):
    foreign = DataSourceFactory(workspace=outsider.workspace, path=sales.path)
    assert_error(execute(analyst_client, slug, "SELECT 1", foreign.uuid), 400, "CONNECTOR_NOT_QUERYABLE")


def test_an_undiscovered_connector_is_not_queryable(analyst_client, member, slug, sales):
    fresh = DataSourceFactory(workspace=member.workspace, path=sales.path)
    body = assert_error(execute(analyst_client, slug, "SELECT 1", fresh.uuid), 400, "CONNECTOR_NOT_QUERYABLE")
    assert "discover" in body["detail"]


def test_an_inactive_connector_is_not_queryable(analyst_client, slug, sales):
    sales.is_active = False
    sales.save()
    assert_error(execute(analyst_client, slug, "SELECT 1", sales.uuid), 400, "CONNECTOR_NOT_QUERYABLE")


def test_a_connector_closed_to_the_callers_role_is_not_queryable(analyst_client, slug, sales):
    SourceAccess.objects.create(data_source=sales, role="admin")
    assert_error(execute(analyst_client, slug, "SELECT 1", sales.uuid), 400, "CONNECTOR_NOT_QUERYABLE")


def test_bad_input_is_a_400_naming_the_field(analyst_client, slug, sales):
    body = assert_error(
        analyst_client.post(
            space_url(slug, "execute"), {"connector_id": "not-a-uuid", "sql": "SELECT 1"}, format="json"
        ),
        400,
        "BAD_REQUEST",
    )
    assert "connector_id" in body["detail"]
    assert_error(execute(analyst_client, slug, "SELECT 1", sales.uuid, row_limit=0), 400, "BAD_REQUEST")
    assert_error(execute(analyst_client, slug, "SELECT 1 " + " " * 50_001, sales.uuid), 400, "BAD_REQUEST")


def test_a_foreign_space_is_404(slug, sales, outsider):
    response = execute(client_for(outsider.user), slug, "SELECT 1", sales.uuid)
    assert_error(response, 404, "NOT_FOUND")


def test_an_unknown_space_is_404(analyst_client, sales):
    assert_error(execute(analyst_client, "no-such-space", "SELECT 1", sales.uuid), 404, "NOT_FOUND")


def test_it_requires_authentication(api_client, slug, sales):
    assert_error(execute(api_client, slug, "SELECT 1", sales.uuid), 401, "UNAUTHORIZED")


def test_an_api_key_of_the_space_works(api_client, api_key_token, slug, sales):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_token}")
    assert execute(api_client, slug, "SELECT 1 AS one", sales.uuid).status_code == 200


def test_an_api_key_of_another_space_of_the_same_user_is_404(api_client, member, slug, sales):
    other = MembershipFactory(user=member.user, role="analyst")
    _, token = api_key_create(workspace=other.workspace, user=member.user, name="elsewhere")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_error(execute(api_client, slug, "SELECT 1 AS one", sales.uuid), 404, "NOT_FOUND")
    assert not QueryHistory.objects.exists()


def test_a_deactivated_user_with_a_valid_token_is_refused(analyst_client, member, slug, sales):
    member.user.is_active = False
    member.user.save(update_fields=["is_active"])
    response = execute(analyst_client, slug, "SELECT 1 AS one", sales.uuid)
    assert response.status_code == 401, response.content
    assert not QueryHistory.objects.exists()


def test_a_token_of_a_deleted_user_is_refused(member, slug, sales):
    client = client_for(member.user)
    member.user.delete()
    assert execute(client, slug, "SELECT 1 AS one", sales.uuid).status_code == 401


def test_every_execution_is_recorded_success_or_failure(analyst_client, member, slug, sales):
    execute(analyst_client, slug, "SELECT id FROM regions", sales.uuid)
    execute(analyst_client, slug, "DELETE FROM regions", sales.uuid)
    execute(analyst_client, slug, "SELECT nope FROM regions", sales.uuid)
    rows = list(QueryHistory.objects.filter(user=member.user).order_by("executed_at"))
    assert [(r.status, r.error_code) for r in rows] == [
        ("success", ""),
        ("error", "DML_BLOCKED"),
        ("error", "SQL_VALIDATION_ERROR"),
    ]
    ok = rows[0]
    assert (ok.workspace_id, ok.data_source_id, ok.connector_id, ok.sql_text) == (
        member.workspace_id,
        sales.pk,
        sales.uuid,
        "SELECT id FROM regions",
    )
    assert ok.row_count == 5
    assert ok.execution_ms is not None
    assert rows[1].error_message


# --- rate limit ---------------------------------------------------------------------------------


@pytest.fixture
def two_per_second(settings, monkeypatch):
    """A limit of 2 per second and a clock the test moves by hand (no sleeping, no timing)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "query_editor": "2/s"},
    }
    clock = {"now": 1_000_000.0}
    monkeypatch.setattr(QueryEditorThrottle, "timer", staticmethod(lambda: clock["now"]))
    return clock


def test_the_rate_limit_answers_429_then_200_after_the_window(analyst_client, slug, sales, two_per_second):
    for _ in range(2):
        assert execute(analyst_client, slug, "SELECT 1 AS one", sales.uuid).status_code == 200
    response = execute(analyst_client, slug, "SELECT 1 AS one", sales.uuid)
    assert_error(response, 429, "RATE_LIMITED")
    assert int(response["Retry-After"]) >= 1
    two_per_second["now"] += 1.5
    assert execute(analyst_client, slug, "SELECT 1 AS one", sales.uuid).status_code == 200


def test_the_rate_limit_is_per_space(analyst_client, member, slug, sales, two_per_second, data_root):
    other = MembershipFactory(user=member.user, role="analyst")
    other_source = discovery_run(source_id=DataSourceFactory(workspace=other.workspace, path=sales.path).pk)
    for _ in range(2):
        execute(analyst_client, slug, "SELECT 1 AS one", sales.uuid)
    assert execute(analyst_client, slug, "SELECT 1 AS one", sales.uuid).status_code == 429
    response = execute(analyst_client, other.workspace.slug, "SELECT 1 AS one", other_source.uuid)
    assert response.status_code == 200, response.content


def test_the_rate_limit_is_per_user(analyst_client, pii_member, slug, sales, two_per_second):
    for _ in range(3):
        execute(analyst_client, slug, "SELECT 1 AS one", sales.uuid)
    assert execute(client_for(pii_member.user), slug, "SELECT 1 AS one", sales.uuid).status_code == 200


def test_rejected_requests_are_not_recorded(analyst_client, member, slug, sales, two_per_second):
    for _ in range(3):
        execute(analyst_client, slug, "SELECT 1 AS one", sales.uuid)
    assert QueryHistory.objects.filter(user=member.user).count() == 2


def test_masking_follows_catalog_classification_edits(analyst_client, slug, sales):
    column = CatalogColumn.objects.get(table__data_source=sales, table__name="customers", name="city")
    column.pii = True
    column.save()
    body = execute(analyst_client, slug, "SELECT city FROM customers", sales.uuid).json()
    assert body["columns"][0]["masked"] is True


# --- the response body --------------------------------------------------------------------------


def test_postgres_values_come_back_as_json_numbers_strings_and_masks(analyst_client, slug, warehouse):
    sql = "SELECT id, email, score, score / 4.0 AS quarter, DATE '2024-01-02' + id AS day FROM people ORDER BY id"
    response = execute(analyst_client, slug, sql, warehouse.uuid, row_limit=2)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["rows"] == [
        {"id": 1, "email": "***MASKED***", "score": 1, "quarter": 0.25, "day": "2024-01-03"},
        {"id": 2, "email": "***MASKED***", "score": 2, "quarter": 0.5, "day": "2024-01-04"},
    ]
    assert [(c["name"], c["masked"]) for c in body["columns"]] == [
        ("id", False),
        ("email", True),
        ("score", False),
        ("quarter", False),
        ("day", False),
    ]
    assert body["warnings"] == ["Result truncated to 2 rows", "1 column masked"]


def test_an_integer_beyond_64_bits_is_rendered_exactly(analyst_client, slug, warehouse):
    sql = "SELECT CAST('1000000000000000000000000000001' AS numeric) AS big, 'é' AS accent"
    response = execute(analyst_client, slug, sql, warehouse.uuid)
    assert response.status_code == 200, response.content
    assert response.json()["rows"] == [{"big": 10**30 + 1, "accent": "é"}]
