from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import Membership
from config.errors import NotFound
from templates_app.models import PromptTemplate


def templates_visible(*, membership: Membership) -> QuerySet[PromptTemplate]:
    """System templates, the organization's public ones, and the caller's own."""
    org_id = membership.workspace.organization_id
    return (
        PromptTemplate.objects.filter(deleted_at__isnull=True)
        .filter(
            Q(is_system=True)
            | Q(organization_id=org_id, is_public=True)
            | Q(organization_id=org_id, owner_id=membership.user_id)
        )
        .select_related("category", "owner")
    )


def template_get(*, membership: Membership, template_id: int) -> PromptTemplate:
    template = templates_visible(membership=membership).filter(pk=template_id).first()
    if template is None:
        raise NotFound(f"Template {template_id} not found")
    return template
