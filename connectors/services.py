"""Writes for data sources: create, change, soft-delete, test, and queue discovery."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.audit import audit_record, snapshot
from accounts.models import Membership
from config.errors import BadRequest, Forbidden
from connectors import engines
from connectors.crypto import encrypt
from connectors.models import DataSource, DiscoveryStatus
from connectors.selectors import connection_spec
from workers.dispatch import send_on_commit

SERVER_ENGINES = {"postgres", "mysql"}
FILE_ENGINES = {"sqlite", "duckdb"}
CONNECTION_FIELDS = ("host", "port", "database", "user", "password", "path", "options")
# DuckDB's own catalog names: a federated query ATTACHes each source under its alias, so these
# would collide (the federation layer refuses them outright).
RESERVED_ALIASES = frozenset({"main", "memory", "system", "temp"})


def require_admin(membership: Membership, action: str) -> None:
    if not membership.is_admin:
        raise Forbidden(f"Only workspace admins may {action}")


def _alias_from(name: str, workspace_id: int, exclude_pk: int | None = None) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", slugify(name).replace("-", "_")) or "source"
    if not base[0].isalpha():
        base = f"s_{base}"
    base = base[:55]
    alias, n = base, 1
    taken = DataSource.objects.alive().filter(workspace_id=workspace_id)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    while alias in RESERVED_ALIASES or taken.filter(alias=alias).exists():
        n += 1
        alias = f"{base}_{n}"
    return alias


# Driver options that carry credentials: they would be stored and shown in clear, so the password
# goes in `connection.password` (encrypted) and nowhere else.
_SECRET_OPTION = re.compile(r"pass|pwd|secret|token|credential|conninfo|dsn", re.IGNORECASE)


def file_path_error(path: str) -> str | None:
    """Why a SQLite / DuckDB file may not be registered at `path`, or None when it may."""
    roots = settings.DATA_SOURCE_FILE_ROOTS
    if any(Path(path).resolve().is_relative_to(root) for root in roots):
        return None
    return "The file must be under one of DATA_SOURCE_FILE_ROOTS: " + ", ".join(map(str, roots))


def secret_options(options: dict[str, Any] | None) -> list[str]:
    return sorted(str(key) for key in (options or {}) if _SECRET_OPTION.search(str(key)))


def _check_connection(connector_type: str, conn: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if secrets := secret_options(conn.get("options")):
        errors["connection.options"] = [
            f"Credentials may not be given as options ({', '.join(secrets)}); use connection.password."
        ]
    if connector_type in SERVER_ENGINES:
        for name in ("host", "database", "user"):
            if not conn.get(name):
                errors[f"connection.{name}"] = [f"Required for {connector_type} sources."]
    if connector_type in FILE_ENGINES:
        path = conn.get("path") or ""
        if not path:
            errors["connection.path"] = [f"Required for {connector_type} sources."]
        elif problem := file_path_error(path):
            errors["connection.path"] = [problem]
    if errors:
        raise BadRequest(next(iter(errors)) + ": " + next(iter(errors.values()))[0], details=errors)


def _apply_connection(source: DataSource, conn: dict[str, Any]) -> None:
    for name in ("host", "database", "path"):
        if name in conn:
            setattr(source, name, conn[name] or "")
    if "user" in conn:
        source.username = conn["user"] or ""
    if "port" in conn:
        source.port = conn["port"]
    if "options" in conn:
        source.options = conn["options"] or {}
    if "password" in conn:  # absent: keep; "" or null: clear
        source.password_encrypted = encrypt(conn["password"] or "")


def _current_connection(source: DataSource) -> dict[str, Any]:
    return {
        "host": source.host,
        "port": source.port,
        "database": source.database,
        "user": source.username,
        "path": source.path,
        "options": source.options,
    }


def _check_alias_not_reserved(alias: str | None) -> None:
    if alias and alias in RESERVED_ALIASES:
        raise BadRequest(
            f"alias {alias!r} is reserved",
            details={"alias": [f"Reserved for the query engine; not one of {', '.join(sorted(RESERVED_ALIASES))}."]},
        )


@transaction.atomic
def data_source_create(
    *,
    membership: Membership,
    name: str,
    connector_type: str,
    connection: dict[str, Any],
    alias: str | None = None,
    **fields: Any,
) -> DataSource:
    require_admin(membership, "create data sources")
    _check_connection(connector_type, connection)
    workspace_id = membership.workspace_id
    _check_alias_not_reserved(alias)
    if alias and DataSource.objects.alive().filter(workspace_id=workspace_id, alias=alias).exists():
        raise BadRequest(
            f"alias {alias!r} is already used in this workspace",
            details={"alias": ["Already used by another data source in this workspace."]},
        )
    source = DataSource(
        workspace_id=workspace_id,
        name=name,
        connector_type=connector_type,
        alias=alias or _alias_from(name, workspace_id),
        created_by=membership.user,
        **fields,
    )
    _apply_connection(source, connection)
    try:
        with transaction.atomic():
            source.save()
    except IntegrityError:
        raise BadRequest("alias is already used in this workspace", details={"alias": ["Already used."]}) from None
    audit_record(actor=membership.user, action="data_source.create", obj=source, after=snapshot(source))
    return source


@transaction.atomic
def data_source_update(*, membership: Membership, source: DataSource, **changes: Any) -> DataSource:
    require_admin(membership, "change data sources")
    before = snapshot(source)
    connection = changes.pop("connection", None)
    if "alias" in changes and changes["alias"] != source.alias:
        alias = changes["alias"]
        _check_alias_not_reserved(alias)
        if (
            DataSource.objects.alive()
            .filter(workspace_id=source.workspace_id, alias=alias)
            .exclude(pk=source.pk)
            .exists()
        ):
            raise BadRequest(f"alias {alias!r} is already used in this workspace", details={"alias": ["Already used."]})
    connector_type = changes.get("connector_type", source.connector_type)
    if connection is not None or "connector_type" in changes:
        merged = {**_current_connection(source), **(connection or {})}
        _check_connection(connector_type, merged)
    for key, value in changes.items():
        setattr(source, key, value)
    if connection:
        _apply_connection(source, connection)
    source.save()
    audit_record(actor=membership.user, action="data_source.update", obj=source, before=before, after=snapshot(source))
    return source


def data_source_delete(*, membership: Membership, source: DataSource) -> DataSource:
    require_admin(membership, "delete data sources")
    before = snapshot(source)
    source.deleted_at = timezone.now()
    source.is_active = False
    source.save(update_fields=["deleted_at", "is_active", "updated_at"])
    audit_record(actor=membership.user, action="data_source.delete", obj=source, before=before, after=snapshot(source))
    return source


def data_source_test(*, source: DataSource) -> engines.TestResult:
    return engines.test_connection(connection_spec(source), timeout_s=5)


def discovery_enqueue(*, membership: Membership, source: DataSource) -> DataSource:
    require_admin(membership, "run schema discovery")
    previous = {"discovery_status": source.discovery_status, "discovery_error": source.discovery_error}
    with transaction.atomic():
        DataSource.objects.filter(pk=source.pk).update(discovery_status=DiscoveryStatus.QUEUED, discovery_error="")

        def restore() -> None:
            DataSource.objects.filter(pk=source.pk).update(**previous)

        send_on_commit("workers.discover_data_source", args=[source.pk], on_broker_error=restore)
    source.refresh_from_db()
    return source
