"""Reads scoped to the caller. Another tenant's object is NotFound, never Forbidden."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from accounts.models import ApiKey, Membership, Workspace
from config.errors import BadRequest, NotFound

AnyUser = User | AnonymousUser


def memberships_for(*, user: AnyUser, api_key: ApiKey | None = None) -> QuerySet[Membership]:
    qs = Membership.objects.select_related("workspace", "workspace__organization", "user").filter(user_id=user.id or 0)
    if api_key is not None:  # a key is confined to its own workspace
        qs = qs.filter(workspace_id=api_key.workspace_id)
    return qs


def membership_get(*, user: AnyUser, workspace_id: int, api_key: ApiKey | None = None) -> Membership:
    membership = memberships_for(user=user, api_key=api_key).filter(workspace_id=workspace_id).first()
    if membership is None:
        raise NotFound(f"Workspace {workspace_id} not found")
    return membership


def membership_by_slug(*, user: AnyUser, slug: str, api_key: ApiKey | None = None) -> Membership:
    membership = memberships_for(user=user, api_key=api_key).filter(workspace__slug=slug).first()
    if membership is None:
        raise NotFound(f"Space {slug!r} not found")
    return membership


def membership_resolve(*, user: AnyUser, workspace_id: int | None, api_key: ApiKey | None = None) -> Membership:
    """The caller's membership in `workspace_id`, or in their only workspace when it is omitted."""
    if workspace_id is not None:
        return membership_get(user=user, workspace_id=workspace_id, api_key=api_key)
    if api_key is not None:
        return membership_get(user=user, workspace_id=api_key.workspace_id, api_key=api_key)
    memberships = list(memberships_for(user=user)[:2])
    if not memberships:
        raise NotFound("You are not a member of any workspace")
    if len(memberships) > 1:
        raise BadRequest(
            "workspace_id is required: you are a member of several workspaces",
            details={"workspace_id": ["This field is required when you belong to several workspaces."]},
        )
    return memberships[0]


def workspaces_for(*, user: AnyUser, api_key: ApiKey | None = None) -> QuerySet[Workspace]:
    ids = memberships_for(user=user, api_key=api_key).values("workspace_id")
    return Workspace.objects.filter(id__in=ids)


def api_keys_visible(*, user: AnyUser, api_key: ApiKey | None = None) -> QuerySet[ApiKey]:
    """Own keys everywhere the caller is a member, plus every key of workspaces they administer."""
    memberships = memberships_for(user=user, api_key=api_key)
    admin_ws = [m.workspace_id for m in memberships if m.is_admin]
    member_ws = [m.workspace_id for m in memberships]
    return (
        ApiKey.objects.select_related("workspace", "created_by")
        .filter(Q(workspace_id__in=admin_ws) | Q(workspace_id__in=member_ws, created_by_id=user.id))
        .order_by("-created_at", "-id")
    )
