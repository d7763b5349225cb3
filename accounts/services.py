"""Writes for accounts: organizations, workspaces, memberships, API keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import ApiKey, Membership, Organization, Role, Workspace, hash_api_key
from config.errors import BadRequest


def _unique_slug(model: type[Organization] | type[Workspace], base: str) -> str:
    root = slugify(base)[:60] or "workspace"
    slug, n = root, 1
    while model.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{root}-{n}"
    return slug


@dataclass(frozen=True)
class AccountResult:
    user: User
    organization: Organization
    workspace: Workspace
    membership: Membership
    created: bool

    def as_json(self) -> dict[str, object]:
        return {
            "user_id": self.user.pk,
            "organization_id": self.organization.pk,
            "workspace_id": self.workspace.pk,
            "workspace_slug": self.workspace.slug,
        }


@transaction.atomic
def account_create(
    *,
    org_name: str,
    username: str,
    password: str,
    email: str = "",
    role: str = Role.ADMIN,
    workspace_name: str | None = None,
    workspace_slug: str | None = None,
) -> AccountResult:
    """Create (or bring up to date) a user who is a member of the organization's workspace.

    Idempotent: the same arguments twice give the same ids. The organization is found by name,
    its first workspace reused; the password and role are set to what was asked.
    """
    if role not in Role.values:
        raise BadRequest(f"role must be one of {', '.join(Role.values)}", details={"role": ["Invalid choice."]})
    if not username or not password:
        raise BadRequest("username and password are required")

    organization = Organization.objects.filter(name=org_name).first()
    if organization is None:
        organization = Organization.objects.create(name=org_name, slug=_unique_slug(Organization, org_name))
    workspace = None
    if workspace_slug:
        workspace = Workspace.objects.filter(slug=workspace_slug, organization=organization).first()
    if workspace is None:
        workspace = organization.workspaces.order_by("id").first()
    if workspace is None:
        name = workspace_name or org_name
        workspace = Workspace.objects.create(
            organization=organization,
            name=name,
            slug=workspace_slug
            if workspace_slug and not Workspace.objects.filter(slug=workspace_slug).exists()
            else _unique_slug(Workspace, name),
            features={"ai.query_writer_enabled": True},
        )

    user, user_created = User.objects.get_or_create(username=username, defaults={"email": email})
    if email and user.email != email:
        user.email = email
    user.set_password(password)
    user.save()

    membership, m_created = Membership.objects.get_or_create(user=user, workspace=workspace, defaults={"role": role})
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return AccountResult(user, organization, workspace, membership, user_created or m_created)


@transaction.atomic
def individual_account_create(*, username: str, password: str, email: str = "") -> AccountResult:
    """An individual account: an organization of one with a personal workspace."""
    result = account_create(
        org_name=f"{username} (personal)", username=username, password=password, email=email, role=Role.ADMIN
    )
    Organization.objects.filter(pk=result.organization.pk).update(is_personal=True)
    return result


def api_key_create(*, workspace: Workspace, user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its token; the token is not stored and cannot be shown again."""
    prefix = secrets.token_hex(6)
    token = f"ps_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        workspace=workspace, created_by=user, name=name, prefix=prefix, key_hash=hash_api_key(token)
    )
    return key, token


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key
