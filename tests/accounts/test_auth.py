from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import ApiKey
from accounts.services import api_key_create
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["message"]
    return body


def test_it_issues_and_refreshes_tokens(api_client, member):
    response = api_client.post(
        "/api/v1/auth/token", {"username": member.user.username, "password": "pass-word-123"}, format="json"
    )
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = api_client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["data"]["user"]["username"] == member.user.username

    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert refreshed.json()["access"]


def test_it_rejects_a_wrong_password_with_401(api_client, member):
    response = api_client.post("/api/v1/auth/token", {"username": member.user.username, "password": "nope"})
    assert_error(response, 401, "UNAUTHORIZED")


def test_it_names_missing_token_fields(api_client):
    body = assert_error(api_client.post("/api/v1/auth/token", {}, format="json"), 400, "BAD_REQUEST")
    assert set(body["error"]["details"]) == {"username", "password"}


def test_it_rejects_a_bad_refresh_token(api_client):
    assert_error(
        api_client.post("/api/v1/auth/token/refresh", {"refresh": "garbage"}, format="json"), 401, "UNAUTHORIZED"
    )


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-jwt", "Token abc", "Bearer a b", "Bearer ps_unknown_key"],
    ids=["missing", "no-token", "malformed-jwt", "wrong-scheme", "extra-parts", "unknown-api-key"],
)
def test_it_answers_401_envelope_for_bad_credentials(api_client, member, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(api_client.get("/api/v1/me"), 401, "UNAUTHORIZED")


def test_it_rejects_an_expired_access_token(api_client, member):
    token = AccessToken.for_user(member.user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=2), lifetime=timedelta(minutes=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_error(api_client.get("/api/v1/me"), 401, "UNAUTHORIZED")


def test_an_api_key_authenticates_and_is_confined_to_its_workspace(api_client, member, api_key_token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_token}")
    response = api_client.get("/api/v1/me")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["auth"]["method"] == "api_key"
    assert [w["id"] for w in data["workspaces"]] == [member.workspace_id]
    assert ApiKey.objects.get().last_used_at is not None


def test_a_revoked_api_key_is_401(api_client, member, api_key_token):
    ApiKey.objects.update(revoked_at=timezone.now())
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_token}")
    body = assert_error(api_client.get("/api/v1/me"), 401, "UNAUTHORIZED")
    assert "revoked" in body["error"]["message"]


def test_api_key_is_shown_once_and_stored_hashed(member_client, member):
    response = member_client.post("/api/v1/api-keys", {"name": "ci"}, format="json")
    assert response.status_code == 201
    data = response.json()["data"]
    token = data["key"]
    assert token.startswith(f"ps_{data['prefix']}_")
    key = ApiKey.objects.get(pk=data["id"])
    assert token not in key.key_hash
    listed = member_client.get("/api/v1/api-keys").json()["data"]
    assert listed["pagination"]["total"] == 1
    assert "key" not in listed["items"][0]


def test_revoking_an_api_key_via_the_api(member_client, member, api_client):
    created = member_client.post("/api/v1/api-keys/", {"name": "temp"}, format="json").json()["data"]
    response = member_client.delete(f"/api/v1/api-keys/{created['id']}")
    assert response.status_code == 200
    assert response.json()["data"]["is_active"] is False
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {created['key']}")
    assert_error(api_client.get("/api/v1/me"), 401, "UNAUTHORIZED")


def test_another_organizations_key_is_404(member_client, outsider):
    foreign, _ = api_key_create(workspace=outsider.workspace, user=outsider.user, name="theirs")
    assert_error(member_client.delete(f"/api/v1/api-keys/{foreign.pk}"), 404, "NOT_FOUND")


def test_creating_a_key_in_another_organizations_workspace_is_404(member_client, outsider):
    response = member_client.post(
        "/api/v1/api-keys", {"name": "x", "workspace_id": outsider.workspace_id}, format="json"
    )
    assert_error(response, 404, "NOT_FOUND")


def test_an_analyst_cannot_revoke_a_colleagues_key_but_an_admin_can(member, admin_member):
    colleague_key, _ = api_key_create(workspace=member.workspace, user=admin_member.user, name="admin's")
    assert_error(client_for(member.user).delete(f"/api/v1/api-keys/{colleague_key.pk}"), 404, "NOT_FOUND")
    own_key, _ = api_key_create(workspace=member.workspace, user=member.user, name="analyst's")
    assert client_for(admin_member.user).delete(f"/api/v1/api-keys/{own_key.pk}").status_code == 200


def test_me_lists_organizations_workspaces_and_roles(member_client, member):
    data = member_client.get("/api/v1/me/").json()["data"]
    assert data["organizations"][0]["id"] == member.workspace.organization_id
    assert data["workspaces"][0] == {
        "id": member.workspace_id,
        "name": member.workspace.name,
        "slug": member.workspace.slug,
        "organization_id": member.workspace.organization_id,
        "role": "analyst",
        "pii_access": False,
        "phi_access": False,
    }
