"""Operators see their own organizations only: a staff flag alone is not enough.

Superusers see everything. Any other staff user sees the objects of organizations in which they
hold an admin membership, and nothing else — lists, detail pages, actions and foreign-key choices.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from accounts.audit import audit_record, snapshot
from accounts.models import Membership, Role


def admin_organization_ids(request: HttpRequest) -> list[int] | None:
    """None = unrestricted (superuser); else the organizations the operator administers."""
    user = request.user
    if getattr(user, "is_superuser", False):
        return None
    cached = getattr(request, "_admin_org_ids", None)
    if cached is None:
        cached = list(
            Membership.objects.filter(user_id=user.pk, role=Role.ADMIN)
            .values_list("workspace__organization_id", flat=True)
            .distinct()
        )
        request._admin_org_ids = cached  # type: ignore[attr-defined]
    return cached


class OrgScopedAdmin(admin.ModelAdmin):
    """Set `org_path` to the lookup from the model to its Organization id, e.g. "workspace__organization"."""

    org_path = "workspace__organization"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        org_ids = admin_organization_ids(request)
        if org_ids is None:
            return qs
        return qs.filter(**{f"{self.org_path}__in": org_ids})

    def _operator(self, request: HttpRequest) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return user.is_superuser or bool(admin_organization_ids(request))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._operator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._operator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._operator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._operator(request)

    def get_list_filter(self, request: HttpRequest) -> Any:
        # A plain relation filter lists every row of the related table (every workspace, every user):
        # offer only the values present in the operator's own objects.
        return [_related_only(self.model, spec) for spec in super().get_list_filter(request)]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return _scoped_field(super().formfield_for_foreignkey(db_field, request, **kwargs), request)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return _scoped_field(super().formfield_for_manytomany(db_field, request, **kwargs), request)


def _related_only(model: type[Model], spec: Any) -> Any:
    if not isinstance(spec, str):
        return spec
    try:
        field = get_fields_from_path(model, spec)[-1]
    except FieldDoesNotExist:
        return spec
    return (spec, admin.RelatedOnlyFieldListFilter) if field.is_relation else spec


def _scoped_field(field: Any, request: HttpRequest) -> Any:
    org_ids = admin_organization_ids(request)
    if org_ids is not None and field is not None:
        scoped = _scope_choices(field.queryset, org_ids)
        if scoped is not None:
            field.queryset = scoped
    return field


def _scope_choices(queryset: QuerySet, org_ids: list[int]) -> QuerySet | None:
    model = queryset.model
    names = {f.name for f in model._meta.get_fields()}
    if model._meta.label == "accounts.Organization":
        return queryset.filter(pk__in=org_ids)
    if "organization" in names:
        return queryset.filter(organization_id__in=org_ids)
    if "workspace" in names:
        return queryset.filter(workspace__organization_id__in=org_ids)
    if "data_source" in names:
        return queryset.filter(data_source__workspace__organization_id__in=org_ids)
    if model._meta.label == "auth.User":
        return queryset.filter(memberships__workspace__organization_id__in=org_ids).distinct()
    return None


class ReadOnlyAdmin(OrgScopedAdmin):
    """History and audit: operators look, nobody edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedAdmin(OrgScopedAdmin):
    """Every add, change and delete made in the admin lands in the audit log with before/after."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = snapshot(type(obj).objects.filter(pk=obj.pk).first()) if change and obj.pk else None
        super().save_model(request, obj, form, change)
        action = f"{obj._meta.model_name}.{'update' if change else 'create'}"
        audit_record(actor=request.user, action=action, obj=obj, before=before, after=snapshot(obj))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before = snapshot(obj)
        audit_record(actor=request.user, action=f"{obj._meta.model_name}.delete", obj=obj, before=before)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            self.delete_model(request, obj)
