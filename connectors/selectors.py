"""Reads for data sources and their catalog, scoped to the caller's workspaces."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from uuid import UUID

from django.db import connection
from django.db.models import Prefetch, QuerySet

from accounts.models import ApiKey, Membership, Role
from accounts.selectors import AnyUser, memberships_for
from config.errors import BadRequest, NotFound
from config.rows import Projection, fetch
from connectors.crypto import decrypt
from connectors.models import CatalogColumn, CatalogTable, DataSource, RowPolicy, SourceAccess
from connectors.types import ColumnInfo, ConnectionSpec, ForeignKey, RowPolicySpec, SourceCatalog, TableInfo

DEFAULT_SCHEMAS = {"postgres": "public", "sqlite": "main", "duckdb": "main"}


def data_sources_visible(*, user: AnyUser, api_key: ApiKey | None = None) -> QuerySet[DataSource]:
    workspace_ids = memberships_for(user=user, api_key=api_key).values("workspace_id")
    return DataSource.objects.alive().filter(workspace_id__in=workspace_ids).select_related("workspace")


def data_source_get(*, user: AnyUser, source_id: int, api_key: ApiKey | None = None) -> DataSource:
    source = data_sources_visible(user=user, api_key=api_key).filter(pk=source_id).first()
    if source is None:
        raise NotFound(f"Data source {source_id} not found")
    return source


_SOURCE = Projection(DataSource, "d")
_RULE = Projection(SourceAccess, "r")


def _sources_with_rules(where: str, params: list) -> dict[int, DataSource]:
    """Live sources matching `where` (on `d`), by id, each with its access rules read in the same
    statement and left as the `access_rules` prefetch, so `can_query` reads nothing more."""
    rows = fetch(
        f"SELECT {_SOURCE.columns}, {_RULE.columns} FROM {_SOURCE.table}"
        f" LEFT JOIN {_RULE.table} ON r.data_source_id = d.id WHERE d.deleted_at IS NULL AND {where}",
        params,
    )
    found: dict[int, DataSource] = {}
    rules: dict[int, list[SourceAccess]] = {}
    for row in rows:
        source = found.get(row[0])
        if source is None:
            source = found[row[0]] = _SOURCE.load(row)
            rules[source.pk] = []
        if row[_SOURCE.width] is not None:
            rules[source.pk].append(_RULE.load(row, _SOURCE.width))
    for source in found.values():
        prefetched = source.access_rules.all()
        prefetched._result_cache = rules[source.pk]
        prefetched._prefetch_done = True  # type: ignore[attr-defined]
        source._prefetched_objects_cache = {"access_rules": prefetched}  # type: ignore[attr-defined]
    return found


def data_source_by_uuid(*, workspace_id: int, uuid: UUID) -> DataSource | None:
    """The workspace's live source `uuid` with its access rules (see _sources_with_rules), or None."""
    found = _sources_with_rules(
        "d.workspace_id = %s AND d.uuid = %s",
        [workspace_id, DataSource._meta.get_field("uuid").get_db_prep_value(uuid, connection)],
    )
    return next(iter(found.values()), None)


def data_sources_for_query(
    *, membership: Membership, ids: list[int], field: str = "selected_data_source_ids"
) -> list[DataSource]:
    """The selected sources in the caller's workspace, in the order given; 400 naming the bad ids.

    One fixed statement with their access rules (execute and both pipeline stages run it each time).
    """
    wanted = list(dict.fromkeys(ids))
    placeholders = ", ".join(["%s"] * len(wanted)) or "NULL"
    found = _sources_with_rules(f"d.workspace_id = %s AND d.id IN ({placeholders})", [membership.workspace_id, *wanted])
    missing = [i for i in ids if i not in found]
    if missing:
        raise BadRequest(
            f"Unknown data source ids in this workspace: {', '.join(map(str, missing))}",
            details={
                field: [f"Data source {i} does not exist in workspace {membership.workspace_id}." for i in missing]
            },
        )
    inactive = [i for i in ids if not found[i].is_active]
    if inactive:
        raise BadRequest(
            f"Inactive data sources: {', '.join(map(str, inactive))}",
            details={field: [f"Data source {i} is inactive." for i in inactive]},
        )
    return [found[i] for i in wanted]


def can_query(*, membership: Membership, source: DataSource) -> bool:
    """Admins always; otherwise open unless the source has access rules, then a rule must match."""
    if membership.role == Role.ADMIN:
        return True
    rules = list(source.access_rules.all())
    if not rules:
        return True
    return any(r.role == membership.role or r.user_id == membership.user_id for r in rules)


def connection_spec(source: DataSource) -> ConnectionSpec:
    return ConnectionSpec(
        engine=source.connector_type,
        host=source.host,
        port=source.port,
        database=source.database,
        user=source.username,
        password=decrypt(source.password_encrypted),
        path=source.path,
        options=dict(source.options or {}),
    )


def default_schema(source: DataSource) -> str:
    return source.database if source.connector_type == "mysql" else DEFAULT_SCHEMAS[source.connector_type]


_CATALOG_CACHE: OrderedDict[tuple[UUID, int, str, str, str], SourceCatalog] = OrderedDict()
_CATALOG_LOCK = Lock()
_CATALOG_CACHE_SIZE = 64


def source_catalog(source: DataSource) -> SourceCatalog:
    """The source's catalog as plain types, cached per catalog version (bumped on every catalog edit).

    Keyed by the uuid, not the id: ids come back after a rolled-back transaction or a restored
    database (SQLite reuses them), and a new source must never see another one's cached catalog.
    The alias, engine and default schema are part of the key too: editing them bumps no version.
    """
    key = (source.uuid, source.catalog_version, source.alias, source.connector_type, default_schema(source))
    with _CATALOG_LOCK:
        cached = _CATALOG_CACHE.get(key)
        if cached is not None:
            _CATALOG_CACHE.move_to_end(key)
            return cached
    tables = (
        CatalogTable.objects.filter(data_source=source)
        .prefetch_related(Prefetch("columns", queryset=CatalogColumn.objects.order_by("ordinal", "name")))
        .order_by("schema_name", "name")
    )
    catalog = SourceCatalog(
        alias=source.alias,
        engine=source.connector_type,
        default_schema=default_schema(source),
        tables=[
            TableInfo(
                schema=t.schema_name,
                name=t.name,
                kind=t.kind,
                row_estimate=t.row_estimate,
                description=t.description,
                columns=tuple(
                    ColumnInfo(
                        name=c.name,
                        data_type=c.data_type,
                        nullable=c.nullable,
                        is_primary_key=c.is_primary_key,
                        foreign_key=ForeignKey(c.fk_schema, c.fk_table, c.fk_column) if c.fk_table else None,
                        pii=c.pii,
                        phi=c.phi,
                        masking_style=c.masking_style,
                        description=c.description,
                        sample_values=tuple(str(v) for v in c.sample_values or ()),
                    )
                    for c in t.columns.all()
                ),
            )
            for t in tables
        ],
    )
    with _CATALOG_LOCK:
        _CATALOG_CACHE[key] = catalog
        while len(_CATALOG_CACHE) > _CATALOG_CACHE_SIZE:
            _CATALOG_CACHE.popitem(last=False)
    return catalog


_POLICY = Projection(RowPolicy, "p")
_POLICY_USERS = RowPolicy.users.through


def row_policies_for(*, membership: Membership, sources: list[DataSource]) -> list[RowPolicySpec]:
    """Active policies on these sources that apply to the caller's role or to the caller by name.

    One fixed statement (every governed query asks this): the policies with whether the caller is
    one of their named users. Roles are matched in Python: JSON containment is not portable to SQLite.
    """
    by_id = {s.pk: s for s in sources}
    if not by_id:
        return []
    placeholders = ", ".join(["%s"] * len(by_id))
    rows = fetch(
        f"SELECT {_POLICY.columns}, EXISTS (SELECT 1 FROM {_POLICY_USERS._meta.db_table} pu"
        f" WHERE pu.rowpolicy_id = p.id AND pu.user_id = %s) FROM {_POLICY.table}"
        f" WHERE p.data_source_id IN ({placeholders}) AND p.is_active = %s"
        " ORDER BY p.data_source_id, p.table_name, p.name",
        [membership.user_id, *by_id, True],
    )
    specs = []
    for row in rows:
        policy = _POLICY.load(row)
        if not (membership.role in (policy.roles or []) or row[_POLICY.width]):
            continue
        source = by_id[policy.data_source_id]
        specs.append(
            RowPolicySpec(
                source_alias=source.alias,
                schema=policy.schema_name or default_schema(source),
                table=policy.table_name,
                predicate=policy.predicate,
                name=policy.name,
            )
        )
    return specs


def member_bindings(membership: Membership) -> dict[str, object]:
    user = membership.user
    bindings: dict[str, object] = {"user.id": user.pk, "user.email": user.email, "user.username": user.username}
    for key, value in (membership.attributes or {}).items():
        bindings[f"member.{key}"] = value
    return bindings
