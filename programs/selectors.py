"""Reads for programs: the sources a member's programs may query, and their runs."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Membership
from connectors.models import DataSource
from connectors.selectors import can_query
from programs.models import ProgramRun


def queryable_sources(*, membership: Membership) -> list[DataSource]:
    """Every live, active source of the member's workspace their role may query, in a stable order.

    One source: tables are addressed by their plain names. Several: federated, `<alias>.<schema>.<table>`.
    """
    sources = (
        DataSource.objects.alive()
        .filter(workspace_id=membership.workspace_id, is_active=True)
        .select_related("workspace")
        .prefetch_related("access_rules")
        .order_by("id")
    )
    return [source for source in sources if can_query(membership=membership, source=source)]


def runs_for_workspace(*, workspace_id: int) -> QuerySet[ProgramRun]:
    return ProgramRun.objects.filter(workspace_id=workspace_id)
