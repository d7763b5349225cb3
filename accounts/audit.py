"""Audit trail: one call per governance change, data source change or export."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import uuid
from typing import Any

from django.db import models

from accounts.models import AuditLog, Workspace
from config.logging import request_id_var

SECRET_FIELDS = {"password", "password_encrypted", "key_hash", "new_password"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    return value


def _secret_marker(value: Any) -> str:
    # A short digest of the stored (encrypted or hashed) value: a rotation shows up as a change in the log
    # while the log holds nothing that helps recover the secret.
    if not value:
        return ""
    return "***" + hashlib.sha256(str(value).encode()).hexdigest()[:8]


def snapshot(obj: models.Model | None, fields: list[str] | None = None) -> dict[str, Any] | None:
    """The object's concrete field values (secrets replaced by a marker), for before/after."""
    if obj is None:
        return None
    out: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        name = field.attname
        if fields is not None and field.name not in fields and name not in fields:
            continue
        if field.name in SECRET_FIELDS:
            out[field.name] = _secret_marker(getattr(obj, name))
            continue
        out[field.name] = _plain(getattr(obj, name))
    return out


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model | None = None,
    workspace: Workspace | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
) -> AuditLog:
    if workspace is None and obj is not None:
        workspace = getattr(obj, "workspace", None) or getattr(getattr(obj, "data_source", None), "workspace", None)
    if before is not None and after is not None:  # keep only what changed, so the log reads as a diff
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        before = {k: v for k, v in before.items() if k in changed}
        after = {k: v for k, v in after.items() if k in changed}
    return AuditLog.objects.create(
        organization_id=workspace.organization_id if workspace else None,
        workspace=workspace,
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=object_type or (obj._meta.label if obj is not None else ""),
        object_id=object_id or (str(obj.pk) if obj is not None and obj.pk is not None else ""),
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:255],
        before=before,
        after=after,
        request_id=request_id_var.get()[:64],
    )
