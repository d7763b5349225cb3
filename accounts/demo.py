"""The demo workspace: an organization, an analyst, an operator, and an API key printed by `make demo`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import ApiKey, Membership, Role, Workspace, hash_api_key
from accounts.services import account_create, api_key_create

DEMO_ORG = "Demo Company"
DEMO_WORKSPACE_SLUG = "demo"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented demo credential
DEMO_EMAIL = "demo@example.com"
OPERATOR_USERNAME = "operator"
OPERATOR_PASSWORD = "operator-password"  # noqa: S105 - documented demo credential
DEMO_KEY_NAME = "demo key"


@dataclass(frozen=True)
class DemoAccount:
    workspace: Workspace
    analyst: Membership
    operator: Membership
    api_key: str


def _key_file() -> Path:
    return Path(settings.VAR_DIR) / "demo_api_key"


def _demo_api_key(workspace: Workspace, membership: Membership) -> str:
    """Reuse the key of the previous run when its token is still on disk; otherwise mint a new one."""
    path = _key_file()
    if path.exists():
        token = path.read_text().strip()
        if ApiKey.objects.filter(key_hash=hash_api_key(token), revoked_at__isnull=True, workspace=workspace).exists():
            return token
    ApiKey.objects.filter(workspace=workspace, name=DEMO_KEY_NAME, revoked_at__isnull=True).delete()
    _, token = api_key_create(workspace=workspace, user=membership.user, name=DEMO_KEY_NAME)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


@transaction.atomic
def seed_demo_account() -> DemoAccount:
    analyst = account_create(
        org_name=DEMO_ORG,
        username=DEMO_USERNAME,
        password=DEMO_PASSWORD,
        email=DEMO_EMAIL,
        role=Role.ANALYST,
        workspace_name="Demo",
        workspace_slug=DEMO_WORKSPACE_SLUG,
    )
    operator = account_create(
        org_name=DEMO_ORG,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        email="operator@example.com",
        role=Role.ADMIN,
        workspace_slug=DEMO_WORKSPACE_SLUG,
    )
    get_user_model().objects.filter(pk=operator.user.pk).update(is_staff=True, is_superuser=True)
    workspace = analyst.workspace
    if "ai.query_writer_enabled" not in workspace.features:
        workspace.features["ai.query_writer_enabled"] = True
        workspace.save(update_fields=["features"])
    token = _demo_api_key(workspace, analyst.membership)
    return DemoAccount(workspace, analyst.membership, operator.membership, token)
