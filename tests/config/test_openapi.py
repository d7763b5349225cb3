import pytest

pytestmark = pytest.mark.django_db


def test_the_schema_is_public_and_tagged(api_client):
    response = api_client.get("/api/schema?format=json")
    assert response.status_code == 200
    schema = response.json()
    tags = {t["name"] for t in schema["tags"]}
    assert {"prompt-studio", "query-editor", "programs", "data-sources", "auth"} <= tags
    assert "/api/v1/auth/token" in schema["paths"]


def test_swagger_ui_is_served_offline(api_client):
    response = api_client.get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist" in html
    assert "cdn." not in html
    assert "unpkg" not in html
    assert "jsdelivr" not in html
    asset = api_client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
