import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey, Membership, Organization, Workspace

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_create_account_prints_the_ids_as_one_json_object():
    result = json.loads(
        run(
            "create_account",
            "--org",
            "Acme",
            "--username",
            "ann",
            "--password",
            "s3cret-pass",
            "--email",
            "ann@acme.test",
            "--role",
            "analyst",
        )
    )
    assert set(result) == {"user_id", "organization_id", "workspace_id", "workspace_slug"}
    membership = Membership.objects.get(user_id=result["user_id"], workspace_id=result["workspace_id"])
    assert membership.role == "analyst"
    assert membership.workspace.slug == result["workspace_slug"]
    assert membership.workspace.organization_id == result["organization_id"]


def test_create_account_is_idempotent_and_joins_existing_organizations():
    first = json.loads(run("create_account", "--org", "Acme", "--username", "ann", "--password", "pw-123456"))
    again = json.loads(run("create_account", "--org", "Acme", "--username", "ann", "--password", "pw-123456"))
    colleague = json.loads(
        run("create_account", "--org", "Acme", "--username", "bob", "--password", "pw-123456", "--role", "viewer")
    )
    assert first == again
    assert colleague["workspace_id"] == first["workspace_id"]
    assert Organization.objects.count() == 1
    assert Workspace.objects.count() == 1


def test_create_account_rejects_an_unknown_role():
    with pytest.raises(CommandError):
        run("create_account", "--org", "Acme", "--username", "x", "--password", "pw-123456", "--role", "god")


def test_seed_demo_twice_neither_fails_nor_duplicates():
    first = json.loads(run("seed_demo", "--json"))
    counts = [m.objects.count() for m in (Organization, Workspace, Membership, ApiKey)]
    second = json.loads(run("seed_demo", "--json"))
    assert second == first
    assert [m.objects.count() for m in (Organization, Workspace, Membership, ApiKey)] == counts
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1
