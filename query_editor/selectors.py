"""Reads of the query editor, scoped to the caller's membership (one workspace = one space)."""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet

from accounts.models import ApiKey, Membership
from accounts.selectors import AnyUser, memberships_active, user_require_active
from config.errors import Forbidden, NotFound
from connectors.models import DataSource
from connectors.selectors import can_query, data_source_by_uuid, source_catalog
from query_editor.errors import ConnectorNotQueryable
from query_editor.models import HistoryStatus, QueryHistory, SavedQuery, TabDraft


def connectors_queryable(*, membership: Membership) -> list[DataSource]:
    """Live, active sources of the space the caller's role may query, by name."""
    sources = (
        DataSource.objects.alive()
        .filter(workspace_id=membership.workspace_id, is_active=True)
        .prefetch_related("access_rules")
        .order_by("name", "id")
    )
    return [s for s in sources if can_query(membership=membership, source=s)]


def space_membership(*, user: AnyUser, slug: str, api_key: ApiKey | None = None) -> Membership:
    """The caller's membership of the space `slug`, with its workspace, organization and user; 404 when
    there is none (nothing about the space is revealed), 401 when the user is gone or inactive.

    The user's `is_active` is checked in the same statement, so a view may authenticate a JWT without
    reading the user (accounts.authentication.HOT_PATH_AUTHENTICATION).
    """
    found = memberships_active(
        user_id=user.id or 0, workspace_id=api_key.workspace_id if api_key else None, slug=slug, limit=1
    )  # a key is confined to its own workspace
    if not found:
        user_require_active(user)
        raise NotFound(f"Space {slug!r} not found")
    return found[0]


def connector_for_query(*, membership: Membership, connector_id: UUID) -> DataSource:
    """The source behind `connector_id`, or 400: unknown here, deleted, inactive, not open to the caller
    or not discovered yet.

    An unknown id and another space's id read the same, so ids leak nothing.
    """
    source = data_source_by_uuid(workspace_id=membership.workspace_id, uuid=connector_id)
    if source is None:
        raise ConnectorNotQueryable(f"Connector {connector_id} is not a queryable connector of this space")
    source.workspace = membership.workspace  # the same row: the statement matched its workspace id
    if not source.is_active:
        raise ConnectorNotQueryable(f"Connector {source.name!r} is inactive")
    if not can_query(membership=membership, source=source):
        raise ConnectorNotQueryable(f"Your role may not query connector {source.name!r}")
    if not source_catalog(source).tables:
        # Nothing to validate a query against until its schema is discovered.
        raise ConnectorNotQueryable(f"Connector {source.name!r} has no discovered schema yet; run discovery first")
    return source


# --- autocomplete -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AutocompleteIndex:
    """One catalog, ready for prefix lookups by bisection (no scan of every table and column)."""

    bodies: list[dict[str, Any]]  # response items in catalog order, shared read-only between requests
    names: list[tuple[str, int]]  # (lowercased table name, position), sorted
    qualified: list[tuple[str, int]]  # (lowercased schema.table, position), sorted
    columns: list[tuple[str, int, int]]  # (lowercased column name, table position, ordinal), sorted


_AUTOCOMPLETE_CACHE: OrderedDict[tuple[UUID, int], _AutocompleteIndex] = OrderedDict()
_AUTOCOMPLETE_LOCK = Lock()
_AUTOCOMPLETE_CACHE_SIZE = 64


def _autocomplete_index(source: DataSource) -> _AutocompleteIndex:
    # Built once per catalog version from the (also cached) SourceCatalog: no query per table.
    key = (source.uuid, source.catalog_version)
    with _AUTOCOMPLETE_LOCK:
        cached = _AUTOCOMPLETE_CACHE.get(key)
        if cached is not None:
            _AUTOCOMPLETE_CACHE.move_to_end(key)
            return cached
    tables = source_catalog(source).tables
    connector_id = str(source.uuid)
    index = _AutocompleteIndex(
        bodies=[
            {"name": t.name, "schema": t.schema, "columns": [c.name for c in t.columns], "connector_id": connector_id}
            for t in tables
        ],
        names=sorted((t.name.lower(), i) for i, t in enumerate(tables)),
        qualified=sorted((f"{t.schema}.{t.name}".lower(), i) for i, t in enumerate(tables)),
        columns=sorted((c.name.lower(), i, n) for i, t in enumerate(tables) for n, c in enumerate(t.columns)),
    )
    with _AUTOCOMPLETE_LOCK:
        _AUTOCOMPLETE_CACHE[key] = index
        while len(_AUTOCOMPLETE_CACHE) > _AUTOCOMPLETE_CACHE_SIZE:
            _AUTOCOMPLETE_CACHE.popitem(last=False)
    return index


def _starting_with(items: list[Any], prefix: str) -> list[Any]:
    """The items of a sorted list of tuples whose first element starts with `prefix`."""
    lo = bisect_left(items, (prefix,))
    hi = bisect_left(items, (prefix + "\U0010ffff",))
    return items[lo:hi]


def _matches(index: _AutocompleteIndex, prefix: str) -> list[dict[str, Any]]:
    whole = {i for _, i in _starting_with(index.names, prefix)} | {
        i for _, i in _starting_with(index.qualified, prefix)
    }
    some: dict[int, list[int]] = {}
    for _, i, ordinal in _starting_with(index.columns, prefix):
        if i not in whole:
            some.setdefault(i, []).append(ordinal)
    out = []
    for i in sorted(whole | set(some)):
        body = index.bodies[i]
        if i in whole:
            out.append(body)
        else:
            out.append({**body, "columns": [body["columns"][n] for n in sorted(some[i])]})
    return out


def autocomplete_tables(
    *, membership: Membership, connector_id: UUID | None = None, prefix: str = ""
) -> list[dict[str, Any]]:
    """Tables (schema, columns) of the space's queryable connectors, or of one.

    `prefix` (case-insensitive) keeps tables whose name or `schema.name` starts with it with all
    their columns, and tables with columns starting with it with just those columns.
    """
    if connector_id is not None:
        sources = [connector_for_query(membership=membership, connector_id=connector_id)]
    else:
        sources = connectors_queryable(membership=membership)
    wanted = prefix.strip().lower()
    tables: list[dict[str, Any]] = []
    for source in sources:
        index = _autocomplete_index(source)
        tables.extend(_matches(index, wanted) if wanted else index.bodies)
    return tables


# --- saved queries ------------------------------------------------------------------------------


def saved_queries_visible(*, membership: Membership) -> QuerySet[SavedQuery]:
    """The caller's own queries and the space's shared ones, most recently updated first."""
    return (
        SavedQuery.objects.filter(workspace_id=membership.workspace_id)
        .filter(Q(owner_id=membership.user_id) | Q(is_shared=True))
        .select_related("data_source", "owner")
        .order_by("-updated_at", "id")
    )


def saved_query_for_owner(*, membership: Membership, query_id: UUID) -> SavedQuery:
    """404 when the caller cannot see it; 403 when they can (shared) but do not own it."""
    query = saved_queries_visible(membership=membership).filter(pk=query_id).first()
    if query is None:
        raise NotFound(f"Saved query {query_id} not found")
    if query.owner_id != membership.user_id:
        raise Forbidden("Only the owner may change or delete a saved query")
    return query


# --- drafts and history -------------------------------------------------------------------------


def draft_get(*, membership: Membership) -> TabDraft | None:
    return TabDraft.objects.filter(workspace_id=membership.workspace_id, user_id=membership.user_id).first()


def _history_filtered(
    qs: QuerySet[QueryHistory], *, status: str | None, connector_id: UUID | None
) -> QuerySet[QueryHistory]:
    if status:
        qs = qs.filter(status=status)
    if connector_id is not None:
        qs = qs.filter(connector_id=connector_id)
    return qs.order_by("-executed_at", "id")


def history_for_user(
    *, membership: Membership, status: str | None = None, connector_id: UUID | None = None
) -> QuerySet[QueryHistory]:
    qs = QueryHistory.objects.filter(workspace_id=membership.workspace_id, user_id=membership.user_id)
    return _history_filtered(qs, status=status, connector_id=connector_id)


def history_for_space(
    *, membership: Membership, status: str | None = None, connector_id: UUID | None = None
) -> QuerySet[QueryHistory]:
    """Every member's executions in the space: workspace admins only."""
    if not membership.is_admin:
        raise Forbidden("Only workspace admins may read the whole space's query history")
    qs = QueryHistory.objects.filter(workspace_id=membership.workspace_id).select_related("user")
    return _history_filtered(qs, status=status, connector_id=connector_id)


HISTORY_STATUSES = tuple(HistoryStatus.values)
