"""Reads scoped to the caller. Another tenant's object is NotFound, never Forbidden."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet
from rest_framework.exceptions import AuthenticationFailed

from accounts.authentication import TokenIdentity
from accounts.models import ApiKey, Membership, Organization, Workspace
from config.errors import BadRequest, NotFound
from config.rows import Projection, fetch

AnyUser = User | AnonymousUser | TokenIdentity


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


def user_require_active(user: AnyUser) -> None:
    """401 unless the caller is an existing, active user (a deferred JWT identity is checked here)."""
    if isinstance(user, TokenIdentity) and not User.objects.filter(pk=user.pk, is_active=True).exists():
        raise AuthenticationFailed("User not found or inactive", code="user_inactive")


_M = Projection(Membership, "m")
_W = Projection(Workspace, "w")
_O = Projection(Organization, "o")
_U = Projection(User, "u")


def memberships_active(
    *, user_id: int, workspace_id: int | None = None, slug: str | None = None, limit: int
) -> list[Membership]:
    """Like memberships_for(...).select_related(...), plus `user.is_active`, in one fixed statement;
    narrowed to one workspace by id or by slug when given.

    Execute, both pipeline stages and the query editor run this on every call (bench/), so it skips
    queryset compilation.
    """
    sql = (
        f"SELECT {_M.columns}, {_W.columns}, {_O.columns}, {_U.columns} FROM {_M.table}"
        f" JOIN {_W.table} ON w.id = m.workspace_id JOIN {_O.table} ON o.id = w.organization_id"
        f" JOIN {_U.table} ON u.id = m.user_id WHERE m.user_id = %s AND u.is_active = %s"
    )
    params: list = [user_id, True]
    if workspace_id is not None:
        sql += " AND m.workspace_id = %s"
        params.append(workspace_id)
    if slug is not None:
        sql += " AND w.slug = %s"
        params.append(slug)
    found = []
    for row in fetch(f"{sql} ORDER BY m.workspace_id, m.user_id LIMIT {int(limit)}", params):
        membership = _M.load(row)
        workspace = _W.load(row, _M.width)
        workspace.organization = _O.load(row, _M.width + _W.width)
        membership.workspace = workspace
        membership.user = _U.load(row, _M.width + _W.width + _O.width)
        found.append(membership)
    return found


def membership_resolve(*, user: AnyUser, workspace_id: int | None, api_key: ApiKey | None = None) -> Membership:
    """The caller's membership in `workspace_id`, or in their only workspace when it is omitted."""
    if api_key is not None:
        if workspace_id is not None and workspace_id != api_key.workspace_id:
            raise NotFound(f"Workspace {workspace_id} not found")  # a key is confined to its own workspace
        workspace_id = api_key.workspace_id
    memberships = memberships_active(user_id=user.id or 0, workspace_id=workspace_id, limit=2)
    if not memberships:
        user_require_active(user)
        if workspace_id is not None:
            raise NotFound(f"Workspace {workspace_id} not found")
        raise NotFound("You are not a member of any workspace")
    if workspace_id is not None:
        return memberships[0]
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
