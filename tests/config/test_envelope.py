import pytest

from config.throttling import UserRateThrottle

pytestmark = pytest.mark.django_db


def test_malformed_json_is_a_400_naming_the_body(member_client):
    response = member_client.generic("POST", "/api/v1/api-keys", '{"name": ', content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "BAD_REQUEST"
    assert "body" in body["error"]["details"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"name": ["a", "list"]}, "name"), ({"name": "ok", "workspace_id": "abc"}, "workspace_id"), ({}, "name")],
)
def test_wrong_types_are_400s_naming_the_field(member_client, payload, field):
    response = member_client.post("/api/v1/api-keys", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=99", "page"),
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page_size=101", "page_size"),
        ("page_size=x", "page_size"),
    ],
)
def test_bad_pagination_is_a_400_naming_the_parameter(member_client, query, field):
    response = member_client.get(f"/api/v1/api-keys?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_lists_carry_the_pagination_block(member_client):
    for n in range(3):
        member_client.post("/api/v1/api-keys", {"name": f"k{n}"}, format="json")
    data = member_client.get("/api/v1/api-keys?page=2&page_size=2").json()["data"]
    assert data["pagination"] == {"page": 2, "page_size": 2, "total": 3, "total_pages": 2}
    assert len(data["items"]) == 1


def test_an_unknown_api_route_is_a_json_404(member_client):
    response = member_client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.urls("tests.config.boom_urls")
def test_an_unexpected_error_is_a_500_envelope_without_internals(member_client, caplog):
    response = member_client.get("/boom", HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "hunter2" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert body["error"]["details"] == {"request_id": "req-123"}
    assert response["X-Request-ID"] == "req-123"
    assert any("req-123" in r.getMessage() for r in caplog.records)


def test_the_rate_limit_answers_a_429_envelope(member_client, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "rate", "2/min", raising=False)
    assert member_client.get("/api/v1/me").status_code == 200
    assert member_client.get("/api/v1/me").status_code == 200
    response = member_client.get("/api/v1/me")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert int(response["Retry-After"]) >= 1
